package listener

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/syncbuf"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
)

// TestAwaitFirstByte: a client's first byte is waited for and left
// unread; a client that closes or resets first, or a context that ends,
// is reported as no first byte.
func TestAwaitFirstByte(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(*net.TCPConn)
		ctx    func() (context.Context, context.CancelFunc)
		want   bool
	}{
		{name: "byte sent", client: func(c *net.TCPConn) { c.Write([]byte("x")) }, want: true, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}},
		{name: "closed", client: func(c *net.TCPConn) { c.Close() }},
		{name: "reset", client: func(c *net.TCPConn) { c.SetLinger(0); c.Close() }},
		{name: "deadline", client: func(*net.TCPConn) {}, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "cancelled", client: func(*net.TCPConn) {}, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := testnet.TCPPair(t)
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

// TestTLSListenerSkipsHandshakeOfConnectAndClose: a connection that ends
// before its first byte, as Consul's TCP check of the public listener
// does, is closed without a TLS handshake; one that sends bytes gets
// the handshake (here a failed one).
func TestTLSListenerSkipsHandshakeOfConnectAndClose(t *testing.T) {
	logs := &syncbuf.Buffer{}
	e := newMeshEnv(t, time.Second, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	app := countingEcho(t)
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app", app.addr)},
		withTLS(tcpListener("public_listener", "127.0.0.1:0", "local_app"), serverTLS())))
	addr := e.addr("public_listener")
	for _, tc := range []struct {
		name   string
		send   string
		failed int // handshakes logged as failed
	}{
		{name: "connect and close", send: "", failed: 0},
		{name: "bytes that are not TLS", send: "GET / HTTP/1.1\r\n\r\n", failed: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(logs.String(), "TLS handshake failed")
			c := dial(t, addr)
			io.WriteString(c, tc.send)
			c.(*net.TCPConn).CloseWrite()
			// The listener logs a failed handshake before it closes the
			// connection, so the log is complete once the client sees EOF.
			c.SetReadDeadline(time.Now().Add(wait))
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("waiting for the listener to close: %v", err)
			}
			if got := strings.Count(logs.String(), "TLS handshake failed") - before; got != tc.failed {
				t.Errorf("%d failed handshakes logged, want %d", got, tc.failed)
			}
		})
	}
}
