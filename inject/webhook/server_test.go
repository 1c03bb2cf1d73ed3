package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/inject"
	"github.com/weft-mesh/weft/internal/pkitest"
)

// TestServerReloadsCertificate serves with one certificate, replaces the
// files with another, and sees the next handshake use the new one.
func TestServerReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.NewCA(t, "test CA")
	first := ca.IssueFiles(t, dir, "injector", pkitest.LeafSpec{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{CertFile: first.CertFile, KeyFile: first.KeyFile, Inject: inject.DefaultConfig(), Logger: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	url := "https://" + ln.Addr().String() + "/healthz"
	if got := servedSerial(t, ca, url); got != serialOf(t, first.CertPEM) {
		t.Fatalf("served serial %s, want the first certificate's", got)
	}
	second := ca.IssueFiles(t, t.TempDir(), "next", pkitest.LeafSpec{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	pkitest.WriteFile(t, first.KeyFile, second.KeyPEM)
	pkitest.WriteFile(t, first.CertFile, second.CertPEM)
	if got := servedSerial(t, ca, url); got != serialOf(t, second.CertPEM) {
		t.Fatalf("served serial %s after the files changed, want the second certificate's", got)
	}
}

func TestServerNeedsItsCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key", Inject: inject.DefaultConfig(), Logger: testLogger(t)}
	if err := s.Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve without a certificate: nil error")
	}
}

// servedSerial fetches url with a fresh connection and returns the serial
// of the certificate the server presented.
func servedSerial(t *testing.T, ca *pkitest.CA, url string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
}

func serialOf(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
