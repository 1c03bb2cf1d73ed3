package listener

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestAwaitFirstByte: a client's first byte is waited for and left
// unread; a client that closes or resets first, or a context that ends,
// is reported as no first byte.
func TestAwaitFirstByte(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(net.Conn)
		ctx    func() (context.Context, context.CancelFunc)
		want   bool
	}{
		{name: "byte sent", client: func(c net.Conn) { c.Write([]byte("x")) }, want: true, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}},
		{name: "closed", client: func(c net.Conn) { c.Close() }},
		{name: "reset", client: func(c net.Conn) { c.(*net.TCPConn).SetLinger(0); c.Close() }},
		{name: "deadline", client: func(net.Conn) {}, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "cancelled", client: func(net.Conn) {}, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tcpPair(t)
			tc.client(client)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			if got := awaitFirstByte(ctx, server); got != tc.want {
				t.Fatalf("awaitFirstByte = %v, want %v", got, tc.want)
			}
			if !tc.want {
				return
			}
			// The byte is still there to read.
			b := make([]byte, 1)
			if _, err := io.ReadFull(server, b); err != nil || b[0] != 'x' {
				t.Fatalf("read after awaitFirstByte = %q, %v; want \"x\"", b, err)
			}
			// No read deadline is left set: a read after the context's
			// deadline has passed still succeeds.
			<-ctx.Done()
			client.Write([]byte("y"))
			if _, err := io.ReadFull(server, b); err != nil || b[0] != 'y' {
				t.Fatalf("a read after the deadline = %q, %v; want \"y\" (the deadline was left set)", b, err)
			}
		})
	}
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}
