package listener

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// h1Body is a request body as the lean server's handler reads it. It is
// allocated per request, never reused: a reader that outlives its
// request (a transport goroutine still sending it upstream) gets
// http.ErrBodyReadAfterClose rather than the next request's bytes.
//
// It sends 100 Continue on the first read of a request that expects it,
// notes the end of the body (the disconnect watch waits for it), and
// never reads an unread body without bound: when the response is
// written, or the handler closes it or returns, at most
// maxPostHandlerReadBytes are discarded to keep the connection, as
// net/http's server does; beyond that the connection closes.
type h1Body struct {
	hc  *h1Conn
	src io.ReadCloser // http.ReadRequest's body

	mu        sync.Mutex // held across reads of src
	remaining int64      // declared bytes not read yet; -1 for chunked
	closed    bool
	early     bool // closed with more left than is read to keep the connection
	tooBig    bool // more left when the response was written than is discarded
	expect    bool // send 100 Continue on the first read
	eof       atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expect {
		b.expect = false
		b.hc.writeContinue()
	}
	return b.readLocked(p)
}

func (b *h1Body) readLocked(p []byte) (int, error) {
	n, err := b.src.Read(p)
	if b.remaining > 0 {
		b.remaining -= int64(n)
	}
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// Close is the handler's: it discards a little of what is left, as
// net/http's server does, and no more.
func (b *h1Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeLocked()
	return nil
}

// closeAfterHandler closes the body once the handler returned, unless
// it did.
func (b *h1Body) closeAfterHandler() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hc.w.closeAfter {
		b.closed = true // the connection closes: what is left does not matter
		return
	}
	b.closeLocked()
}

func (b *h1Body) closeLocked() {
	if b.closed {
		return
	}
	b.closed = true
	if b.eof.Load() {
		b.src.Close()
		return
	}
	if b.remaining > maxPostHandlerReadBytes {
		b.early = true
		return
	}
	n, err := b.discardLocked(maxPostHandlerReadBytes)
	if err == io.EOF {
		b.src.Close()
		return
	}
	if n == maxPostHandlerReadBytes || err != nil {
		b.early = true
	}
}

// abandon closes the body of a request whose handler panicked: the
// connection closes, nothing more is read.
func (b *h1Body) abandon() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

func (b *h1Body) closedEarly() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.early
}

// discardBeforeResponse reads what is left of the body before the
// response is written: clients that send a whole request before reading
// the response would otherwise deadlock. It reports false when the
// connection cannot be kept (the body ended in an error, or was closed
// unfinished); too much left sets tooBig.
func (b *h1Body) discardBeforeResponse() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return b.eof.Load()
	case b.remaining >= maxPostHandlerReadBytes:
		b.tooBig = true
		return true
	}
	_, err := b.discardLocked(maxPostHandlerReadBytes + 1)
	switch err {
	case nil:
		b.tooBig = true
		return true
	case io.EOF:
		return b.src.Close() == nil
	}
	return false
}

// discardLocked reads and drops up to n bytes; it returns io.EOF when
// the body ended within them.
func (b *h1Body) discardLocked(n int64) (int64, error) {
	bp := discardBuffers.Get().(*[]byte)
	defer discardBuffers.Put(bp)
	var read int64
	for read < n {
		buf := (*bp)[:min(int64(len(*bp)), n-read)]
		m, err := b.readLocked(buf)
		read += int64(m)
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

var discardBuffers = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// writeContinue sends 100 Continue, once, unless the response started.
func (hc *h1Conn) writeContinue() {
	if !hc.canWriteContinue.Load() {
		return
	}
	hc.continueMu.Lock()
	defer hc.continueMu.Unlock()
	if hc.canWriteContinue.Load() {
		hc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		hc.bw.Flush()
		hc.canWriteContinue.Store(false)
	}
}

// disableWriteContinue stops a 100 Continue from being sent: the
// response has started.
func (hc *h1Conn) disableWriteContinue() {
	if !hc.canWriteContinue.Load() {
		return
	}
	hc.continueMu.Lock()
	hc.canWriteContinue.Store(false)
	hc.continueMu.Unlock()
}
