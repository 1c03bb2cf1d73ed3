package listener

import (
	"net"
	"syscall"
)

// parkableSocket is the socket under conn that an idle reader can park
// on (h2sConn.park), nil when conn is not one (a TLS connection may hold
// decrypted bytes the socket no longer shows).
func parkableSocket(conn net.Conn) syscall.RawConn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// awaitReadable waits until the socket has something to read (a byte,
// its end or an error), its read deadline passes, or it is closed; the
// read that follows says which. It looks at the socket once, before it
// waits (a byte may have arrived before the wait began); after the
// poller's wake it trusts it: a spurious wake only means the read that
// follows waits.
func awaitReadable(rc syscall.RawConn) {
	looked := false
	rc.Read(func(fd uintptr) bool {
		if looked {
			return true
		}
		looked = true
		return !peekWouldBlock(fd)
	})
}

func peekWouldBlock(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EINTR
}
