package listener

import "sync"

const bufferSize = 32 << 10

// buffers are the copy buffers of TCP proxying. Between
// two TCP sockets the kernel splices and the buffer is not touched.
var buffers = sync.Pool{New: func() any {
	b := make([]byte, bufferSize)
	return &b
}}

func getBuffer() *[]byte  { return buffers.Get().(*[]byte) }
func putBuffer(b *[]byte) { buffers.Put(b) }
