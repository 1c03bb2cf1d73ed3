package h2wire

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLower(t *testing.T) {
	for in, want := range map[string]string{
		"Content-Type": "content-type", "Grpc-Status": "grpc-status", "X-Custom-Thing": "x-custom-thing", "already": "already",
	} {
		if got := Lower(in); got != want {
			t.Errorf("Lower(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Lower("Content-Type") }); n != 0 {
		t.Errorf("Lower of a common name allocates %v times", n)
	}
}

func TestCanonical(t *testing.T) {
	for _, in := range []string{"content-type", "grpc-status", "grpc-timeout", "te", "traceparent", "x-custom-thing", "x-b3-traceid", "www-authenticate"} {
		if got, want := Canonical(in), textproto.CanonicalMIMEHeaderKey(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Canonical("grpc-status") }); n != 0 {
		t.Errorf("Canonical of a common name allocates %v times", n)
	}
}

func TestValues(t *testing.T) {
	h := http.Header{}
	vs := NewValues(3)
	if n := testing.AllocsPerRun(1, func() {
		h, vs = make(http.Header, 4), NewValues(3)
		vs.Add(h, "A", "1")
		vs.Add(h, "B", "2")
		vs.Add(h, "A", "3") // a second value: copied out
		vs.Add(h, "C", "4")
		vs.Add(h, "D", "5") // past the room asked for
	}); n > 5 {
		t.Errorf("five values cost %v allocations, want at most 5 (map, array, A's copy, D)", n)
	}
	want := http.Header{"A": {"1", "3"}, "B": {"2"}, "C": {"4"}, "D": {"5"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	h["B"] = append(h["B"], "x") // must not overwrite C's value
	if h.Get("C") != "4" {
		t.Errorf("appending to B overwrote C: %q", h["C"])
	}
}

func TestConnectionSpecific(t *testing.T) {
	for name, want := range map[string]bool{
		"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true,
		"te": false, "content-type": false, "x-connection": false,
	} {
		if got := ConnectionSpecific(name); got != want {
			t.Errorf("ConnectionSpecific(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNextFrameBuffered(t *testing.T) {
	frame := func(payload int) []byte {
		return append([]byte{0, byte(payload >> 8), byte(payload), 0, 0, 0, 0, 0, 1}, make([]byte, payload)...)
	}
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"nothing", nil, false},
		{"part of a header", frame(0)[:5], false},
		{"a header without its payload", frame(10)[:9], false},
		{"a whole empty frame", frame(0), true},
		{"a whole frame", frame(300), true},
		{"one byte short", frame(300)[:308], false},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(bytes.NewReader(tt.in), 4096)
		br.Peek(len(tt.in)) // buffer everything there is
		if got := NextFrameBuffered(br); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
