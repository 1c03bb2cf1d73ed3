// Package relay moves bytes between two connections for weft-proxy: the
// pooled copy buffers, and the bidirectional pipe of TCP proxying and of
// HTTP protocol upgrades (101 Switching Protocols).
package relay

import (
	"io"
	"sync"
)

// BufferSize is the size of the pooled copy buffers.
const BufferSize = 32 << 10

var buffers = sync.Pool{New: func() any {
	b := make([]byte, BufferSize)
	return &b
}}

// GetBuffer returns a copy buffer of BufferSize bytes from the pool.
// Return it with PutBuffer once done with it.
func GetBuffer() *[]byte { return buffers.Get().(*[]byte) }

// PutBuffer returns a buffer GetBuffer gave.
func PutBuffer(b *[]byte) { buffers.Put(b) }

// Pipe copies between down and up, both ways, until both directions are
// done, and returns the bytes read from down (sent up) and read from up
// (sent down). A clean end of one direction (EOF) half-closes the side it
// was writing to (CloseWrite), so that request/response protocols and echo
// servers work, or closes that side when it cannot be half-closed; an
// error in either direction closes both sides, which ends the other
// direction too. Closing either side from elsewhere ends the pipe.
//
// Between two TCP sockets the kernel splices and the buffers are not
// touched. Into a TLS connection over a BatchConn, the records of each
// buffer go out in one write.
func Pipe(down, up io.ReadWriteCloser) (in, out int64) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		in = copyHalf(up, down)
	}()
	out = copyHalf(down, up)
	<-done
	return in, out
}

// copyHalf copies src to dst and ends dst's half of the exchange.
func copyHalf(dst, src io.ReadWriteCloser) int64 {
	buf := GetBuffer()
	defer PutBuffer(buf)
	n, err := io.CopyBuffer(batchWriter(dst), src, *buf)
	if err != nil {
		dst.Close()
		src.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return n
}
