package listener

import (
	"context"
	"net"
	"syscall"
	"time"
)

// awaitFirstByte waits until the client sends its first byte, without
// consuming it, and reports whether it did: false when the client closed
// or reset the connection first, or ctx ended.
//
// It is for TLS listeners, where the client speaks first. Consul's
// "sidecar listening" check connects to the public listener every 10 s
// and closes without a byte; closing such a connection here, on a shallow
// stack, spares an idle sidecar the TLS handshake's code and the stack
// growth it needs, which otherwise fault about 3 MB of the executable
// back in after each release of its pages (cmd/weft-proxy/memory.go).
// A connection that is not a socket is not waited on.
func awaitFirstByte(ctx context.Context, conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(aLongTimeAgo) })
	var (
		buf  [1]byte
		n    int
		perr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return perr != syscall.EAGAIN && perr != syscall.EINTR
	})
	if !stop() {
		return false // ctx ended; the deadline it set stays
	}
	conn.SetReadDeadline(time.Time{})
	return err == nil && perr == nil && n > 0
}
