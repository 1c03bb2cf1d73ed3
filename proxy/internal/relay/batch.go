package relay

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
)

// BatchConn is the connection under a TLS connection whose records the
// relay writes together. crypto/tls writes each record of a Write (up
// to 16 KiB) with a system call of its own, so relaying 32 KiB into TLS
// took two, and the peer woke for each. During a batch (Pipe's copies
// into TLS), the records a Write produces are gathered and written with
// one call; outside one, writes go straight through.
//
// Every write to the connection takes its lock, so that a write from
// another goroutine during a batch (crypto/tls's close_notify alert) is
// gathered behind the batch's records rather than put on the wire ahead
// of them. crypto/tls already serializes its own writes; the lock is
// uncontended otherwise.
type BatchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      *[]byte
}

// NewBatchConn wraps c, the connection a TLS connection is to run over.
func NewBatchConn(c net.Conn) *BatchConn { return &BatchConn{Conn: c} }

// Write writes p, or gathers it during a batch.
func (c *BatchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// batch runs write with the connection's writes gathered, then writes
// them in one call. An error of that write is write's error when write
// had none.
func (c *BatchConn) batch(write func() (int, error)) (int, error) {
	c.mu.Lock()
	c.batching, c.buf = true, batchBuffers.Get().(*[]byte)
	c.mu.Unlock()
	n, err := write()
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := c.buf
	c.batching, c.buf = false, nil
	if len(*buf) > 0 {
		if _, werr := c.Conn.Write(*buf); werr != nil && err == nil {
			n, err = 0, werr
		}
	}
	*buf = (*buf)[:0]
	batchBuffers.Put(buf)
	return n, err
}

// batchBuffers hold one relay buffer's worth of TLS records.
var batchBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, BufferSize+1024)
	return &b
}}

// tlsBatchWriter writes to a TLS connection over a BatchConn, each Write
// in one system call.
type tlsBatchWriter struct {
	tc *tls.Conn
	bc *BatchConn
}

func (w tlsBatchWriter) Write(p []byte) (int, error) {
	return w.bc.batch(func() (int, error) { return w.tc.Write(p) })
}

// batchWriter returns the writer copies into dst use: dst itself, or,
// for a TLS connection over a BatchConn, one that writes each copy's
// records together.
func batchWriter(dst io.Writer) io.Writer {
	if tc, ok := dst.(*tls.Conn); ok {
		if bc, ok := tc.NetConn().(*BatchConn); ok {
			return tlsBatchWriter{tc: tc, bc: bc}
		}
	}
	return dst
}
