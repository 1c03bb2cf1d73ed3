package listener

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// testServerSettings are the settings both servers of a comparison get:
// small header bound, so that the bound's 431 is cheap to reach.
func testServerSettings(h http.Handler) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return &http.Server{
		Handler:           h,
		Protocols:         p,
		MaxHeaderBytes:    4 << 10,
		ReadHeaderTimeout: wait,
		IdleTimeout:       wait,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
}

// leanServer runs the lean server alone on a loopback socket.
type leanServer struct {
	s    *http1Server
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

func startLeanServer(t testing.TB, srv *http.Server) *leanServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := &leanServer{ln: ln, addr: ln.Addr().String()}
	ls.s = newHTTP1Server(slog.New(slog.NewTextHandler(tWriterOf(t), &slog.HandlerOptions{Level: slog.LevelDebug})), func(ctx context.Context, _ *connInfo) context.Context { return ctx })
	ls.s.configure(srv, context.Background())
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ls.wg.Add(1)
			go func() {
				defer ls.wg.Done()
				ls.s.serve(&connInfo{raw: c, conn: c}, func(c net.Conn) { c.Close() })
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ls.s.closeAll()
		ls.wg.Wait()
	})
	return ls
}

// startNetHTTPServer runs srv on a loopback socket.
func startNetHTTPServer(t testing.TB, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func tWriterOf(t testing.TB) io.Writer {
	if tt, ok := t.(*testing.T); ok {
		return tWriter{tt}
	}
	return io.Discard
}

// exchangeRaw sends raw on a new connection to addr, half-closes it and
// reads everything the server sends until it closes.
func exchangeRaw(t testing.TB, addr string, raw []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	go func() {
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading the answer: %v", err)
	}
	return got
}

// isReset reports a connection reset: a server that closes with unread
// input resets the connection, possibly before the client read all of
// what was sent.
func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read" && !oe.Timeout()
}
