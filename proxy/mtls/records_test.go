package mtls

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/testnet"
)

// TestMeshSendsFullRecords: on a new mesh connection, 64 KiB of data go
// out in four full 16 KiB records, one write each, both ways; crypto/tls's
// dynamic record sizing would start at about one TCP segment per record.
func TestMeshSendsFullRecords(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	server := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: trustOf(t, ca)}.ServerConfig(serverParams())
	client := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Trust: trustOf(t, ca)}.ClientConfig(clientParams(api))
	dialed, accepted := testnet.TCPPair(t)
	cw, sw := &testnet.WriteCounter{Conn: dialed}, &testnet.WriteCounter{Conn: accepted}
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
		counter  *testnet.WriteCounter
	}{
		{"client to server", cli, srv, cw},
		{"server to client", srv, cli, sw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, 64<<10)
			go io.ReadFull(tc.to, make([]byte, len(data)))
			before := tc.counter.Writes()
			if _, err := tc.from.Write(data); err != nil {
				t.Fatal(err)
			}
			if got := tc.counter.Writes() - before; got != 4 {
				t.Errorf("64 KiB took %d writes, want 4 (full 16 KiB records)", got)
			}
		})
	}
}
