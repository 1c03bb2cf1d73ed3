package statedir

import (
	"log/slog"
	"sync"
)

// Writer writes one file of a Dir in the background, latest wins: Save
// never blocks on the disk, and when saves come faster than the disk takes
// them only the newest content is written. Create it with NewWriter; Close
// writes what is pending and stops it.
type Writer struct {
	dir  *Dir
	name string
	log  *slog.Logger

	mu      sync.Mutex
	pending func() ([]byte, error) // encodes the newest content; nil when written
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

// NewWriter starts a Writer of file name in dir.
func NewWriter(dir *Dir, name string, log *slog.Logger) *Writer {
	w := &Writer{dir: dir, name: name, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// Save schedules encode's result to be written. encode runs on the
// writer's goroutine, so it must only read immutable data. Saves after
// Close are dropped.
func (w *Writer) Save(encode func() ([]byte, error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.pending = encode
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close writes the pending content, if any, and stops the writer. It is
// idempotent and waits.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.wake)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		w.flush()
	}
	w.flush()
}

func (w *Writer) flush() {
	w.mu.Lock()
	encode := w.pending
	w.pending = nil
	w.mu.Unlock()
	if encode == nil {
		return
	}
	data, err := encode()
	if err == nil {
		err = w.dir.Write(w.name, data)
	}
	if err != nil {
		w.log.Error("could not save last-known-good state; a restart without the control plane will not have it", "file", w.name, "error", err)
	}
}
