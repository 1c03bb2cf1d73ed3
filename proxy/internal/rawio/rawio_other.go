//go:build !linux

package rawio

const supported = false

func (o *op) read(uintptr) bool  { panic("rawio: not supported on this platform") }
func (o *op) write(uintptr) bool { panic("rawio: not supported on this platform") }
