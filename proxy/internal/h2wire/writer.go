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
	buf      []byte
	spare    []byte
	flushing bool
	err      error
}

// Buffer sizes: appends past flushAt are written at once; buffers past
// keepCap are not kept between flushes.
const (
	flushAt = 64 << 10
	keepCap = 16 << 10
)

// NewWriter returns a Writer of frames to conn.
func NewWriter(conn io.Writer) *Writer {
	w := &Writer{conn: conn, buf: make([]byte, 0, 4<<10)}
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
	w.buf = append(w.buf, p...)
	if len(w.buf) >= flushAt && !w.flushing {
		// Written with the lock held: the caller may be in the middle of
		// frames that must stay together (HEADERS and CONTINUATION) or
		// of a buffer the lock guards.
		_, err := w.conn.Write(w.buf)
		w.buf = w.buf[:0]
		if err != nil {
			w.err = err
			return 0, err
		}
	}
	return len(p), nil
}

// FlushLocked writes what was appended, unless a flush in progress will.
// Call with the lock held; it is held again on return. The first write
// error is returned from then on.
func (w *Writer) FlushLocked() error {
	if w.err != nil || w.flushing {
		return w.err
	}
	w.flushing = true
	for len(w.buf) > 0 && w.err == nil {
		out := w.buf
		w.buf = w.spare[:0]
		w.spare = nil
		w.mu.Unlock()
		_, err := w.conn.Write(out)
		w.mu.Lock()
		if err != nil {
			w.err = err
		}
		if cap(out) <= keepCap {
			w.spare = out[:0]
		}
	}
	w.flushing = false
	w.written.Broadcast()
	return w.err
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
