package e2e

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// TestHTTPBalancingAndFailover covers the spine: 100 requests from web to
// api ×2 through two sidecars spread over both instances; failing one
// instance's health moves all new requests to the other within 2 s, and
// restoring it brings traffic back.
func TestHTTPBalancingAndFailover(t *testing.T) {
	m := startMesh(t)
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 1, true, "api-1")
	c.waitServedBy(30*time.Second, 1, true, "api-2")

	seen := c.tally(100)
	if seen["api-1"] < 30 || seen["api-2"] < 30 || seen["api-1"]+seen["api-2"] != 100 {
		t.Fatalf("100 requests spread as %v; want each api instance ≥ 30", seen)
	}

	failed := time.Now()
	m.setHealth(t, "api-2", false)
	switched := c.waitServedBy(5*time.Second, 20, false, "api-1")
	if took := switched.Sub(failed); took > 2*time.Second {
		t.Errorf("traffic left the failed instance after %v; want ≤ 2s", took)
	}
	if seen := c.tally(100); seen["api-1"] != 100 {
		t.Fatalf("after failing api-2, 100 requests went to %v; want all on api-1", seen)
	}

	m.setHealth(t, "api-2", true)
	c.waitServedBy(5*time.Second, 1, false, "api-2")
	if seen := c.tally(100); seen["api-2"] < 30 {
		t.Fatalf("after restoring api-2, 100 requests went to %v; want api-2 ≥ 30", seen)
	}
}

// TestControlPlaneOutage kills the control plane: sidecars keep serving on
// their last config, and a change made in Consul meanwhile is applied once
// the control plane is back and the sidecar has reconnected.
func TestControlPlaneOutage(t *testing.T) {
	m := startMesh(t)
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 1, true, "api-2")

	m.controlPlane.Kill()
	if seen := c.tally(50); seen["api-1"]+seen["api-2"] != 50 {
		t.Fatalf("with the control plane down, 50 requests answered as %v", seen)
	}
	m.setHealth(t, "api-2", false)
	if seen := c.tally(50); seen["api-1"]+seen["api-2"] != 50 {
		t.Fatalf("with the control plane down, 50 requests answered as %v", seen)
	}

	m.controlPlane.Start()
	waitHTTP200(t, "http://"+m.cpAdmin+"/ready", 30*time.Second)
	c.waitServedBy(45*time.Second, 20, false, "api-1")
}

// TestTCPEcho sends bytes through web's tcp upstream to an echo server and
// checks they come back unchanged, including a 10 MiB transfer.
func TestTCPEcho(t *testing.T) {
	m := startMesh(t)
	tests := []struct {
		name string
		size int
	}{
		{"one byte", 1},
		{"small", 4 << 10},
		{"10 MiB", 10 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, tt.size)
			rand.Read(want)
			var got []byte
			eventually(t, 30*time.Second, "echo through the mesh", func() error {
				var err error
				got, err = echo(addr(m.echoPort), want)
				return err
			})
			if !bytes.Equal(got, want) {
				t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(want))
			}
		})
	}
}

// echo writes payload, half-closes, and reads everything back.
func echo(address string, payload []byte) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, rerr := io.ReadAll(conn)
	if werr := <-errc; werr != nil {
		return nil, werr
	}
	if rerr != nil {
		return nil, rerr
	}
	if len(got) != len(payload) {
		return got, io.ErrUnexpectedEOF
	}
	return got, nil
}
