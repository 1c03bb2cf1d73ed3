package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var (
	testTD  = spiffeid.RequireTrustDomainFromString("weft.local")
	testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

func webID(t *testing.T) spiffeid.ID {
	t.Helper()
	id, err := ServiceIdentity{testTD, "default", "dc1", "web"}.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func csrFor(t *testing.T, key crypto.Signer, uris ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}
	for _, u := range uris {
		p, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func p256(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func verifyLeaf(t *testing.T, ca *CA, leaf *x509.Certificate) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Root())
	for _, c := range ca.Chain() {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: testNow,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify: %v", err)
	}
}

func TestSign(t *testing.T) {
	ca, err := NewRootCA(testTD, testNow, RootTTL)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name    string
		csr     func(t *testing.T) []byte
		ttl     time.Duration
		wantErr string
	}{
		{name: "no SAN in CSR", csr: func(t *testing.T) []byte { return csrFor(t, p256(t)) }, ttl: time.Hour},
		{name: "matching SAN", csr: func(t *testing.T) []byte { return csrFor(t, p256(t), webID(t).String()) }, ttl: time.Hour},
		{name: "other service's SAN", csr: func(t *testing.T) []byte {
			return csrFor(t, p256(t), "spiffe://weft.local/ns/default/dc/dc1/svc/db")
		}, ttl: time.Hour, wantErr: "may only get"},
		{name: "weak RSA", csr: func(t *testing.T) []byte { return csrFor(t, small) }, ttl: time.Hour, wantErr: "at least 2048"},
		{name: "TTL too short", csr: func(t *testing.T) []byte { return csrFor(t, p256(t)) }, ttl: time.Second, wantErr: "below the minimum"},
		{name: "garbage", csr: func(*testing.T) []byte { return []byte("not a csr") }, ttl: time.Hour, wantErr: "parse CSR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := ca.Sign(tt.csr(t), webID(t), tt.ttl, testNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Sign error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			verifyLeaf(t, ca, leaf)
			got, err := IdentityOfCert(leaf)
			if err != nil || got.Service != "web" {
				t.Fatalf("leaf identity = %+v, %v; want service web", got, err)
			}
			if life := leaf.NotAfter.Sub(testNow); life != tt.ttl {
				t.Fatalf("leaf lives %v after issue, want %v", life, tt.ttl)
			}
		})
	}
}

func TestSignDNSNames(t *testing.T) {
	ca, err := NewRootCA(testTD, testNow, RootTTL)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"*.ingress.consul", "api.example.com"}
	tests := []struct {
		name    string
		asked   []string
		allowed []string
		want    []string
		wantErr string
	}{
		{name: "none asked, none allowed"},
		{name: "none asked, some allowed", allowed: allowed},
		{name: "all allowed", asked: []string{"api.example.com", "*.ingress.consul"}, allowed: allowed, want: []string{"api.example.com", "*.ingress.consul"}},
		{name: "a subset", asked: []string{"API.example.com", "api.example.com"}, allowed: allowed, want: []string{"api.example.com"}},
		{name: "one not allowed", asked: []string{"api.example.com", "evil.example.com"}, allowed: allowed,
			wantErr: `CSR asks for DNS SAN "evil.example.com", which is not one of the names the caller may have (*.ingress.consul, api.example.com)`},
		{name: "none allowed", asked: []string{"api.example.com"}, wantErr: `CSR asks for DNS SAN "api.example.com", but the caller may have no DNS name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := &x509.CertificateRequest{DNSNames: tt.asked, URIs: []*url.URL{webID(t).URL()}}
			csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, p256(t))
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := ca.Sign(csr, webID(t), time.Hour, testNow, tt.allowed...)
			if tt.wantErr != "" {
				var dnsErr *DNSNameError
				if !errors.As(err, &dnsErr) || err.Error() != tt.wantErr {
					t.Fatalf("Sign error = %v, want a *DNSNameError %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			verifyLeaf(t, ca, leaf)
			if diff := cmp.Diff(tt.want, leaf.DNSNames); diff != "" {
				t.Errorf("leaf DNS names (-want +got):\n%s", diff)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != webID(t).String() {
				t.Errorf("leaf URIs %v, want only %s", leaf.URIs, webID(t))
			}
		})
	}
}

func TestLoadOrCreateRootPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	first, created, err := LoadOrCreateRoot(dir, testTD, testNow)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreateRoot(dir, testTD, testNow)
	if err != nil || created {
		t.Fatalf("restart: created=%v err=%v", created, err)
	}
	if !again.Root().Equal(first.Root()) {
		t.Fatal("restart changed the root")
	}
	_, _, err = LoadOrCreateRoot(dir, spiffeid.RequireTrustDomainFromString("other.local"), testNow)
	if err == nil || !strings.Contains(err.Error(), "trust domain") {
		t.Fatalf("other trust domain: err = %v, want a trust-domain refusal", err)
	}
	os.Remove(filepath.Join(dir, keyFile))
	if _, _, err := LoadOrCreateRoot(dir, testTD, testNow); err == nil {
		t.Fatal("a CA directory missing its key must be an error, not a new root")
	}
}

// TestPluggedIntermediate signs with an operator's intermediate whose root
// the operator keeps offline.
func TestPluggedIntermediate(t *testing.T) {
	root, err := NewRootCA(testTD, testNow, RootTTL)
	if err != nil {
		t.Fatal(err)
	}
	interKey := p256(t)
	tmpl := &x509.Certificate{SerialNumber: big1(), Subject: pkix.Name{CommonName: "ops intermediate"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(24 * time.Hour * 365),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, interKey.Public(), root.key)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(interKey)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certP := write("inter.crt", EncodeCerts(inter))
	keyP := write("inter.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	chainP := write("chain.crt", EncodeCerts(root.Root()))

	ca, err := LoadPluggedCA(certP, keyP, chainP, testTD, testNow)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Sign(csrFor(t, p256(t)), webID(t), time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, ca, leaf)

	otherKey := write("other.key", pemKey(t, p256(t)))
	if _, err := LoadPluggedCA(certP, otherKey, chainP, testTD, testNow); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: err = %v", err)
	}
}

func pemKey(t *testing.T, k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func big1() *big.Int { return big.NewInt(42) }
