// Package pkitest makes certificate authorities and leaf certificates for
// tests: SPIFFE leaves for the mesh's mTLS, including the malformed ones
// a mesh must reject, and serving certificates written to files for the
// injector and the Kubernetes API server. Keys are ECDSA P-256.
package pkitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TrustDomain is the trust domain of test identities.
const TrustDomain = "weft.local"

// ID returns the Consul-form SPIFFE ID of service in dc1.
func ID(service string) string {
	return "spiffe://" + TrustDomain + "/ns/default/dc/dc1/svc/" + service
}

var serial atomic.Int64

// CA is a self-signed root.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA returns a new root named name valid from an hour ago for a day,
// with uris (a SPIFFE trust domain's ID, say) as URI SANs.
func NewCA(t testing.TB, name string, uris ...string) *CA {
	t.Helper()
	key := NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// PEM returns the root certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Bundle concatenates the PEM of several roots, in order.
func Bundle(cas ...*CA) []byte {
	var out []byte
	for _, ca := range cas {
		out = append(out, ca.PEM()...)
	}
	return out
}

// LeafSpec describes a leaf certificate, for servers and clients. Zero
// times default to a validity from a minute ago for an hour.
type LeafSpec struct {
	URIs      []string
	DNSNames  []string
	IPs       []net.IP
	NotBefore time.Time
	NotAfter  time.Time
}

// Leaf issues a leaf certificate for id (a SPIFFE ID) valid for an hour.
func (ca *CA) Leaf(t testing.TB, id string) tls.Certificate {
	t.Helper()
	return ca.Issue(t, LeafSpec{URIs: []string{id}})
}

// Issue issues a leaf certificate following spec.
func (ca *CA) Issue(t testing.TB, spec LeafSpec) tls.Certificate {
	t.Helper()
	cert, err := ca.TryIssue(spec)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TryIssue issues a leaf certificate following spec, or says why the
// spec cannot be made into one (a SAN x509 cannot encode, say).
func (ca *CA) TryIssue(spec LeafSpec) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = time.Now().Add(-time.Minute)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "leaf"},
		DNSNames:              spec.DNSNames,
		IPAddresses:           spec.IPs,
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, u := range spec.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// SignCSR issues a leaf for id (a SPIFFE ID) valid from now for ttl with
// the public key of a DER CSR. Safe to call from any goroutine.
func (ca *CA) SignCSR(csrDER []byte, id string, ttl time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	u, err := url.Parse(id)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "leaf"},
		URIs:                  []*url.URL{u},
		NotBefore:             now,
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
}

// NewKey generates a P-256 key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// KeyPEM encodes key as PKCS #8 PEM.
func KeyPEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Pair is an issued certificate and its key, PEM-encoded and written to
// CertFile and KeyFile.
type Pair struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

// IssuePEM issues a leaf certificate following spec and returns it and
// its key in PEM, written nowhere (CertFile and KeyFile are empty).
func (ca *CA) IssuePEM(t testing.TB, spec LeafSpec) Pair {
	t.Helper()
	cert := ca.Issue(t, spec)
	return Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		KeyPEM:  KeyPEM(t, cert.PrivateKey.(*ecdsa.PrivateKey)),
	}
}

// IssueFiles issues a leaf certificate following spec and writes it to
// dir/name.crt and its key to dir/name.key, for servers that read files.
func (ca *CA) IssueFiles(t testing.TB, dir, name string, spec LeafSpec) Pair {
	t.Helper()
	p := ca.IssuePEM(t, spec)
	p.CertFile, p.KeyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	WriteFile(t, p.CertFile, p.CertPEM)
	WriteFile(t, p.KeyFile, p.KeyPEM)
	return p
}

// WriteFile writes data to path atomically (write, then rename), as a
// Secret volume update appears to a reader.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// StaticLeaf serves one certificate as an mtls.Leaf.
type StaticLeaf struct {
	Cert atomic.Pointer[tls.Certificate]
}

// NewStaticLeaf returns a StaticLeaf holding cert.
func NewStaticLeaf(cert tls.Certificate) *StaticLeaf {
	l := &StaticLeaf{}
	l.Cert.Store(&cert)
	return l
}

func (l *StaticLeaf) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return l.Cert.Load(), nil
}

func (l *StaticLeaf) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return l.Cert.Load(), nil
}
