package listener

import "sync"

const bufferSize = 32 << 10

// buffers are the copy buffers of TCP proxying and HTTP bodies. Between
// two TCP sockets the kernel splices and the buffer is not touched.
var buffers = sync.Pool{New: func() any {
	b := make([]byte, bufferSize)
	return &b
}}

func getBuffer() *[]byte  { return buffers.Get().(*[]byte) }
func putBuffer(b *[]byte) { buffers.Put(b) }

// bufferPool adapts buffers to httputil.BufferPool.
type bufferPool struct{}

func (bufferPool) Get() []byte {
	return *getBuffer()
}

func (bufferPool) Put(b []byte) {
	if cap(b) == bufferSize {
		b = b[:bufferSize]
		putBuffer(&b)
	}
}
