package controlplane

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

// TestXDSConnectionsHaveNoKernelKeepalive: the control plane's xDS
// connections do not use the kernel's TCP keepalive. gRPC's keepalive
// pings check the clients, and grpc-go makes their wait the socket's
// TCP_USER_TIMEOUT, with which Go's default kernel keepalive had the
// kernel abort idle connections of clients that answered every probe.
func TestXDSConnectionsHaveNoKernelKeepalive(t *testing.T) {
	s, src := startServerWith(t, Config{})
	src <- testCatalog()
	c := openADS(t, s, "delta", "web-1-sidecar-proxy")
	c.recvAndACK(t)
	var conn *net.TCPConn
	poll.Until(t, 10*time.Second, "the client's connection recorded", func() error {
		s.stalls.conns.Range(func(_, v any) bool {
			conn, _ = v.(*guardedConn).conn.(*net.TCPConn)
			return conn == nil
		})
		if conn == nil {
			return fmt.Errorf("no connection recorded")
		}
		return nil
	})
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var keepalive int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		keepalive, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if keepalive != 0 {
		t.Errorf("SO_KEEPALIVE = %d on an accepted xDS connection, want 0", keepalive)
	}
}
