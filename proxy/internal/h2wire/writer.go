package h2wire

import (
	"io"
	"sync"
)

// Writer is an HTTP/2 connection's frame writer with group commit.
// Frames are appended to a buffer under its lock (the Framer writes to
// it); FlushLocked hands the buffer to the connection, writing without
// the lock so that other streams append meanwhile. A flush that comes
// while another goroutine is in its write returns at once: that writer
// writes what was appended before it returns. Under load, the frames of
// many streams leave in one system call, as an event loop's writes do;
// alone, a flush writes at once.
//
// Lock and Unlock guard the buffer and whatever the caller keeps with it
// (an HPACK encoder, whose table must change in the order blocks go
// out). FlushLocked releases the lock while it writes and holds it again
// when it returns, so call it only where another goroutine may write
// frames: after a whole frame sequence, never between a HEADERS frame
// and its CONTINUATIONs or while a buffer the lock guards is in use.
// Write never releases the lock.
type Writer struct {
	mu       sync.Mutex
	written  sync.Cond // signalled when a flush ends, with mu
	conn     io.Writer
	buf      *[]byte // frames appended and not yet written; nil: none
	flushing bool
	err      error
}

// Buffer sizes: appends past flushAt are written at once; buffers past
// keepCap are not reused.
const (
	flushAt = 64 << 10
	keepCap = 16 << 10
)

// buffers holds the frame buffers of every Writer. A connection takes
// one when it appends a frame and gives it back once it is written, so
// that an idle connection holds none: a control plane holds one
// connection per sidecar, most of them idle at any time.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// NewWriter returns a Writer of frames to conn.
func NewWriter(conn io.Writer) *Writer {
	w := &Writer{conn: conn}
	w.written.L = &w.mu
	return w
}

func (w *Writer) Lock()   { w.mu.Lock() }
func (w *Writer) Unlock() { w.mu.Unlock() }

// Write appends p (a frame). Call with the lock held.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.buf == nil {
		w.buf = buffers.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
	return len(p), w.maybeWriteLocked()
}

// AppendData appends a DATA frame of p on stream id, END_STREAM set if
// end, as http2.Framer's WriteData writes it, without copying p into the
// Framer's buffer first (the Framer keeps that buffer, at the size of
// the largest frame it wrote, for the connection's life). p must not
// exceed the peer's SETTINGS_MAX_FRAME_SIZE. Call with the lock held.
func (w *Writer) AppendData(id uint32, end bool, p []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.buf == nil {
		w.buf = buffers.Get().(*[]byte)
	}
	var flags byte
	if end {
		flags = 0x1 // END_STREAM
	}
	n := len(p)
	*w.buf = append(*w.buf, byte(n>>16), byte(n>>8), byte(n), 0x0 /* DATA */, flags,
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
	*w.buf = append(*w.buf, p...)
	return w.maybeWriteLocked()
}

// maybeWriteLocked writes the buffer past flushAt, unless a flush is in
// progress. It writes with the lock held: the caller may be in the
// middle of frames that must stay together (HEADERS and CONTINUATION)
// or of a buffer the lock guards.
func (w *Writer) maybeWriteLocked() error {
	if len(*w.buf) < flushAt || w.flushing {
		return nil
	}
	_, err := w.conn.Write(*w.buf)
	*w.buf = (*w.buf)[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// FlushLocked writes what was appended, unless a flush in progress will.
// Call with the lock held; it is held again on return. The first write
// error is returned from then on. The buffers written go back to the
// pool: a connection with nothing to write holds none.
func (w *Writer) FlushLocked() error {
	if w.err != nil || w.flushing {
		return w.err
	}
	w.flushing = true
	for w.buf != nil && w.err == nil {
		out := w.buf
		w.buf = nil
		if len(*out) > 0 {
			w.mu.Unlock()
			_, err := w.conn.Write(*out)
			w.mu.Lock()
			if err != nil {
				w.err = err
			}
		}
		putBuffer(out)
	}
	w.flushing = false
	w.written.Broadcast()
	return w.err
}

// putBuffer gives b back to the pool, unless it grew past keepCap.
func putBuffer(b *[]byte) {
	if cap(*b) <= keepCap {
		*b = (*b)[:0]
		buffers.Put(b)
	}
}

// SyncLocked returns once every frame appended so far has been written,
// or writing failed: unlike FlushLocked, it waits for a flush in progress
// on another goroutine, whose write may hold the caller's frames. Call it
// before closing the connection on purpose, or a stream's last frames
// can be cut off. Call with the lock held; it is held again on return.
func (w *Writer) SyncLocked() error {
	for w.flushing {
		w.written.Wait()
	}
	return w.FlushLocked()
}
