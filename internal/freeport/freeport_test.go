package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreFreeDistinctAndBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := Get(t)
		if p < first || p > last {
			t.Fatalf("port %d outside %d-%d", p, first, last)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		l.Close()
	}
}

func TestSkipsPortsInUse(t *testing.T) {
	mu.Lock()
	start := next
	mu.Unlock()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(start)))
	if err != nil {
		t.Skipf("port %d taken by another process: %v", start, err)
	}
	defer l.Close()
	if p := Get(t); p == start {
		t.Fatalf("handed out port %d, which is in use", p)
	}
}
