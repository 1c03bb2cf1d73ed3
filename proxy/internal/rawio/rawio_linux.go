package rawio

import (
	"syscall"
	"unsafe"
)

const supported = true

// read tries one read(2) into o.buf; false asks the RawConn to wait on
// the poller (EAGAIN).
func (o *op) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.buf[0])), uintptr(len(o.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		o.n, o.errno = int(r), e
		return true
	}
}

// write writes o.buf[o.n:] with write(2) until all of it is written or it
// fails; false asks the RawConn to wait on the poller (EAGAIN).
func (o *op) write(fd uintptr) bool {
	for o.n < len(o.buf) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.buf[o.n])), uintptr(len(o.buf)-o.n))
		switch e {
		case 0:
			if r == 0 {
				o.errno = syscall.EIO // write(2) of a socket never writes nothing
				return true
			}
			o.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
	return true
}
