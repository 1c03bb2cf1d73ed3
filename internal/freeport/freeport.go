// Package freeport hands tests (and the benchmark harnesses) TCP ports on
// 127.0.0.1 for processes they start, which must bind the port themselves.
//
// A port from listening on :0 and closing comes from the kernel's
// ephemeral range, where any outgoing connection of any process may take
// it before the child process binds it (a sidecar's "bind: address
// already in use"). Ports here come from below the ephemeral range, which
// outgoing connections never use, starting at a random offset per test
// process and never handed out twice by one process; each is checked to
// be bindable when handed out.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// The range handed out: below Linux's default ephemeral range
// (32768–60999) and above the well-known ports the demo and common
// services use.
const (
	first = 22000
	last  = 32767
)

var (
	mu   sync.Mutex
	next = first + rand.IntN(last-first+1)
	used = map[int]bool{}
)

// Get returns a port on 127.0.0.1 that is free now, or fails t.
func Get(t testing.TB) int {
	t.Helper()
	p, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Take returns a port on 127.0.0.1 that is free now, for programs that
// are not tests (bench/sidecar).
func Take() (int, error) { return get() }

func get() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range last - first + 1 {
		p := next
		next++
		if next > last {
			next = first
		}
		if used[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		used[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no free port in %d-%d", first, last)
}
