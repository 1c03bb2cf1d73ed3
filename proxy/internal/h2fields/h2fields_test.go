package h2fields

import "testing"

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
