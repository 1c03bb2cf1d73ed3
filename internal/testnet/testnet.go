// Package testnet has network fixtures for tests.
package testnet

import (
	"net"
	"sync"
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
