//go:build !linux

package listener

import (
	"context"
	"net"
)

// awaitFirstByte does not wait outside Linux: the handshake reads the
// first byte.
func awaitFirstByte(context.Context, net.Conn) bool { return true }
