package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/pkitest"
)

// outside issues a certificate for hosts from ca, parsed as a secret is.
func outside(t *testing.T, ca *pkitest.CA, hosts ...string) *tls.Certificate {
	t.Helper()
	pair := ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: hosts})
	cert, err := ParseCertificate(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// browser is a client outside the mesh: it trusts ca and verifies the
// server's name, as any HTTPS client does, and has no certificate.
func browser(ca *pkitest.CA, serverName string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{RootCAs: pool, ServerName: serverName}
}

// TestOutsideServerPicksBySNI: a listener for clients outside the mesh
// presents, of its certificates, the one whose names match the client's
// server name, else the first; it asks for no client certificate.
func TestOutsideServerPicksBySNI(t *testing.T) {
	ca := pkitest.NewCA(t, "gateway CA")
	certs := &Certificates{}
	certs.Set(map[string]*tls.Certificate{
		"api":  outside(t, ca, "api.example.com"),
		"shop": outside(t, ca, "*.shop.example.com"),
	})
	server := Credentials{Certificates: certs}.ServerConfig(&Server{MinVersion: tls.VersionTLS12, Certificates: []string{"api", "shop"}})
	tests := []struct {
		name, serverName, wantName string
	}{
		{"first certificate's name", "api.example.com", "api.example.com"},
		{"second certificate's wildcard", "www.shop.example.com", "*.shop.example.com"},
		{"a name neither has falls back to the first", "other.example.com", "api.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := browser(ca, tt.serverName)
			client.InsecureSkipVerify = true // the fallback's name does not match; what was presented is checked below
			serverErr, clientErr, cs := handshake(t, server, client)
			if serverErr != nil || clientErr != nil {
				t.Fatalf("handshake: server %v, client %v", serverErr, clientErr)
			}
			if got := cs.PeerCertificates[0].DNSNames[0]; got != tt.wantName {
				t.Errorf("presented %q, want %q", got, tt.wantName)
			}
		})
	}
	client, asked := browser(ca, "www.shop.example.com"), false
	client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		return &tls.Certificate{}, nil
	}
	if _, clientErr, _ := handshake(t, server, client); clientErr != nil || asked {
		t.Errorf("a client verifying the server as browsers do: %v, asked for a certificate: %v; want a handshake and no certificate asked for", clientErr, asked)
	}
}

// TestOutsideServerRotates: a new version of a certificate applies to the
// next handshake; a certificate not received fails handshakes, naming it.
func TestOutsideServerRotates(t *testing.T) {
	ca := pkitest.NewCA(t, "gateway CA")
	certs := &Certificates{}
	server := Credentials{Certificates: certs}.ServerConfig(&Server{MinVersion: tls.VersionTLS12, Certificates: []string{"api"}})
	if serverErr, _, _ := handshake(t, server, browser(ca, "api.example.com")); serverErr == nil || !strings.Contains(serverErr.Error(), `certificate "api" has not been received`) {
		t.Errorf("handshake before the certificate arrived: server error %v, want it named", serverErr)
	}
	for range 2 {
		want := outside(t, ca, "api.example.com")
		certs.Set(map[string]*tls.Certificate{"api": want})
		_, clientErr, cs := handshake(t, server, browser(ca, "api.example.com"))
		if clientErr != nil || !cs.PeerCertificates[0].Equal(want.Leaf) {
			t.Fatalf("handshake after Set: %v; want the certificate just set presented", clientErr)
		}
	}
}

// TestOutsideServerParams: versions and cipher suites bound what clients
// may negotiate.
func TestOutsideServerParams(t *testing.T) {
	ca := pkitest.NewCA(t, "gateway CA")
	certs := &Certificates{}
	certs.Set(map[string]*tls.Certificate{"api": outside(t, ca, "api.example.com")})
	tests := []struct {
		name        string
		server      Server
		client      func(*tls.Config)
		wantErr     bool
		wantVersion uint16
	}{
		{"TLS 1.3 by default", Server{MinVersion: tls.VersionTLS12}, func(*tls.Config) {}, false, tls.VersionTLS13},
		{"a maximum", Server{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, func(*tls.Config) {}, false, tls.VersionTLS12},
		{"a client below the minimum", Server{MinVersion: tls.VersionTLS13}, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, true, 0},
		{"a cipher suite both have", Server{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			func(c *tls.Config) {
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
			}, false, tls.VersionTLS12},
		{"no cipher suite in common", Server{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			func(c *tls.Config) { c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256} }, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.server
			p.Certificates = []string{"api"}
			client := browser(ca, "api.example.com")
			tt.client(client)
			_, clientErr, cs := handshake(t, Credentials{Certificates: certs}.ServerConfig(&p), client)
			if (clientErr != nil) != tt.wantErr {
				t.Fatalf("client handshake error %v, want an error: %v", clientErr, tt.wantErr)
			}
			if !tt.wantErr && cs.Version != tt.wantVersion {
				t.Errorf("negotiated version %x, want %x", cs.Version, tt.wantVersion)
			}
			if !tt.wantErr && len(p.CipherSuites) > 0 && cs.CipherSuite != p.CipherSuites[0] {
				t.Errorf("negotiated %s, want %s", tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(p.CipherSuites[0]))
			}
		})
	}
}

func TestParseCertificate(t *testing.T) {
	ca := pkitest.NewCA(t, "gateway CA")
	pair, other := ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"a"}}), ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"b"}})
	if c, err := ParseCertificate(pair.CertPEM, pair.KeyPEM); err != nil || c.Leaf == nil || c.Leaf.DNSNames[0] != "a" {
		t.Errorf("ParseCertificate = %v, %v; want the certificate with its leaf", c, err)
	}
	if _, err := ParseCertificate(pair.CertPEM, other.KeyPEM); err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Errorf("a key of another certificate: %v", err)
	}
}
