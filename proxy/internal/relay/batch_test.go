package relay

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/testnet"
)

// tlsPair is a handshaken TLS connection over loopback TCP whose client
// side runs over a BatchConn over a write counter.
func tlsPair(t *testing.T) (client *tls.Conn, counter *testnet.WriteCounter, server *tls.Conn) {
	t.Helper()
	ca := pkitest.NewCA(t, "relay")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	dialed, accepted := testnet.TCPPair(t)
	deadline := time.Now().Add(10 * time.Second)
	dialed.SetDeadline(deadline)
	accepted.SetDeadline(deadline)
	counter = &testnet.WriteCounter{Conn: dialed}
	client = tls.Client(NewBatchConn(counter), &tls.Config{RootCAs: pool, ServerName: "relay.test", DynamicRecordSizingDisabled: true})
	server = tls.Server(accepted, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"relay.test"}})}})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return client, counter, server
}

// TestBatchWriterWritesRecordsTogether: a copy's 32 KiB go out as two
// TLS records in one write through the batch writer, in two without it,
// and the peer reads the same bytes.
func TestBatchWriterWritesRecordsTogether(t *testing.T) {
	client, counter, server := tlsPair(t)
	data := make([]byte, BufferSize)
	rand.Read(data)
	for _, tc := range []struct {
		name   string
		w      io.Writer
		writes int64
	}{
		{"batched", batchWriter(client), 1},
		{"TLS connection itself", client, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, len(data))
				io.ReadFull(server, b)
				got <- b
			}()
			before := counter.Writes()
			if n, err := tc.w.Write(data); n != len(data) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if w := counter.Writes() - before; w != tc.writes {
				t.Errorf("%d writes for %d bytes, want %d", w, len(data), tc.writes)
			}
			if !bytes.Equal(<-got, data) {
				t.Error("the peer read other bytes than were written")
			}
		})
	}
}

// TestPipeIntoTLSBatches: what Pipe relays into a TLS connection over a
// BatchConn arrives whole and in order, followed by its close_notify,
// and ending the pipe from other goroutines is safe (run with -race).
func TestPipeIntoTLSBatches(t *testing.T) {
	client, _, server := tlsPair(t)
	app, down := testnet.TCPPair(t)
	data := make([]byte, 1<<20)
	rand.Read(data)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Pipe(down, client)
	}()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	app.Write(data)
	app.CloseWrite() // Pipe ends the TLS side's writing half: close_notify
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("the TLS peer read %d bytes, want the %d written, in order", len(b), len(data))
	}
	server.Close()
	app.Close()
	<-done
}
