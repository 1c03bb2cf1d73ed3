package pkitest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
)

// TestIssueFiles: the files make a key pair a server can load, and the
// certificate verifies against the CA for its IP and DNS name.
func TestIssueFiles(t *testing.T) {
	ca := NewCA(t, "test CA", "spiffe://"+TrustDomain)
	if len(ca.Cert.URIs) != 1 || ca.Cert.URIs[0].String() != "spiffe://weft.local" {
		t.Errorf("CA URIs %v", ca.Cert.URIs)
	}
	dir := t.TempDir()
	p := ca.IssueFiles(t, dir, "server", LeafSpec{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if p.CertFile != filepath.Join(dir, "server.crt") || p.KeyFile != filepath.Join(dir, "server.key") {
		t.Errorf("files %s, %s", p.CertFile, p.KeyFile)
	}
	pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.PEM()) {
		t.Fatal("CA PEM not parsed")
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
}

func TestLeafIsASPIFFEClientAndServer(t *testing.T) {
	ca := NewCA(t, "root")
	cert := ca.Leaf(t, ID("web"))
	if got := cert.Leaf.URIs[0].String(); got != "spiffe://weft.local/ns/default/dc/dc1/svc/web" {
		t.Errorf("URI SAN %s", got)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("verify for usage %v: %v", usage, err)
		}
	}
}
