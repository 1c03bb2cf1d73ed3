package testnet

import (
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
