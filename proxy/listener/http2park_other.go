//go:build !linux

package listener

import (
	"net"
	"syscall"
)

// parkableSocket is nil outside Linux: idle readers do not park.
func parkableSocket(net.Conn) syscall.RawConn { return nil }

func awaitReadable(syscall.RawConn) {}
