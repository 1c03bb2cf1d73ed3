// Package testnet has network fixtures for tests.
package testnet

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// BlackHole listens on 127.0.0.1 and accepts every TCP connection but never
// answers, like a peer behind a firewall that drops replies. It returns the
// address; the listener and the connections it accepted close when tb ends.
func BlackHole(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// ClosedPort returns an address on 127.0.0.1 that nothing listens on: a
// port just bound and released, so dialing it is refused.
func ClosedPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Serve listens on 127.0.0.1 and runs handle on every TCP connection it
// accepts, each on its own goroutine, closing the connection when handle
// returns. It returns the address; the listener closes when tb ends.
func Serve(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TCPPair returns the two ends of a loopback TCP connection, dialled and
// accepted; both are closed when the test ends.
func TCPPair(tb testing.TB) (dialed, accepted *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a := <-got
	if a == nil {
		c.Close()
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { c.Close(); a.Close() })
	return c.(*net.TCPConn), a.(*net.TCPConn)
}

// WriteCounter counts the writes made to the connection it wraps: the
// system calls a writer above it would make.
type WriteCounter struct {
	net.Conn
	writes atomic.Int64
}

func (c *WriteCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Writes is how many writes were made so far.
func (c *WriteCounter) Writes() int64 { return c.writes.Load() }
