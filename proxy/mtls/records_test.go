package mtls

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/testnet"
)

// writeCounter counts the writes made to a connection.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestMeshSendsFullRecords: on a new mesh connection, 64 KiB of data go
// out in four full 16 KiB records, one write each, both ways; crypto/tls's
// dynamic record sizing would start at about one TCP segment per record.
func TestMeshSendsFullRecords(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	server := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: trustOf(t, ca)}.ServerConfig(serverParams())
	client := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Trust: trustOf(t, ca)}.ClientConfig(clientParams(api))
	dialed, accepted := testnet.TCPPair(t)
	cw, sw := &writeCounter{Conn: dialed}, &writeCounter{Conn: accepted}
	cli, srv := tls.Client(cw, client), tls.Server(sw, server)
	deadline := time.Now().Add(10 * time.Second)
	dialed.SetDeadline(deadline)
	accepted.SetDeadline(deadline)
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to *tls.Conn
		counter  *writeCounter
	}{
		{"client to server", cli, srv, cw},
		{"server to client", srv, cli, sw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, 64<<10)
			go io.ReadFull(tc.to, make([]byte, len(data)))
			before := tc.counter.writes.Load()
			if _, err := tc.from.Write(data); err != nil {
				t.Fatal(err)
			}
			if got := tc.counter.writes.Load() - before; got != 4 {
				t.Errorf("64 KiB took %d writes, want 4 (full 16 KiB records)", got)
			}
		})
	}
}
