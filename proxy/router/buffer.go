package router

import "sync"

const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any {
	b := make([]byte, bufferSize)
	return &b
}}

// bufferPool adapts buffers to httputil.BufferPool.
type bufferPool struct{}

func (bufferPool) Get() []byte { return *buffers.Get().(*[]byte) }

func (bufferPool) Put(b []byte) {
	if cap(b) == bufferSize {
		b = b[:bufferSize]
		buffers.Put(&b)
	}
}
