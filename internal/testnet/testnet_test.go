package testnet

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestBlackHoleAcceptsAndNeverAnswers(t *testing.T) {
	c, err := net.Dial("tcp", BlackHole(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !err.(net.Error).Timeout() {
		t.Fatalf("read %d bytes, %v; want a timeout with nothing read", n, err)
	}
}

func TestClosedPortRefuses(t *testing.T) {
	if c, err := net.DialTimeout("tcp", ClosedPort(t), time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to ClosedPort was accepted")
	}
}

func TestServeRunsTheHandlerPerConnection(t *testing.T) {
	addr := Serve(t, func(c net.Conn) { io.WriteString(c, "hello") })
	for range 2 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c) // the handler's return closes the connection
		c.Close()
		if err != nil || string(got) != "hello" {
			t.Fatalf("read %q, %v; want hello then EOF", got, err)
		}
	}
}

func TestTCPPairIsConnected(t *testing.T) {
	dialed, accepted := TCPPair(t)
	if _, err := dialed.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := accepted.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
	if dialed.LocalAddr().String() != accepted.RemoteAddr().String() {
		t.Errorf("ends %v and %v are not one connection", dialed.LocalAddr(), accepted.RemoteAddr())
	}
}

func TestWriteCounterCountsWrites(t *testing.T) {
	dialed, accepted := TCPPair(t)
	c := &WriteCounter{Conn: dialed}
	for _, s := range []string{"a", "bc", "def"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Writes(); got != 3 {
		t.Errorf("Writes() = %d, want 3", got)
	}
	b := make([]byte, 6)
	if _, err := io.ReadFull(accepted, b); err != nil || string(b) != "abcdef" {
		t.Errorf("peer read %q, %v; want \"abcdef\"", b, err)
	}
}
