package mtls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"
)

// Certificates holds the certificates received over SDS, with their
// private keys, by secret name: those an API gateway's listeners present
// to clients outside the mesh. Handshakes read them without locks, so a
// new version of a secret applies to the next handshake while
// established connections keep theirs. The zero Certificates holds none.
type Certificates struct {
	byName atomic.Pointer[map[string]*tls.Certificate]
}

// Get returns the named certificate, or nil if it has not been received.
func (c *Certificates) Get(name string) *tls.Certificate {
	if c == nil {
		return nil
	}
	if m := c.byName.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// Set replaces every certificate. The map and the certificates are owned
// by c afterwards.
func (c *Certificates) Set(byName map[string]*tls.Certificate) { c.byName.Store(&byName) }

// All returns a copy of the certificates by name.
func (c *Certificates) All() map[string]*tls.Certificate {
	if c == nil {
		return map[string]*tls.Certificate{}
	}
	if m := c.byName.Load(); m != nil {
		return maps.Clone(*m)
	}
	return map[string]*tls.Certificate{}
}

// ParseCertificate parses a PEM certificate chain, leaf first, and its
// PEM private key; it fails when either does not parse or the key is not
// the leaf's. The result's Leaf is set.
func ParseCertificate(chainPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		return nil, errors.New("no leaf certificate")
	}
	return &cert, nil
}

// outsideServerConfig is the listener-side configuration of TLS for
// clients outside the mesh: it presents one of p.Certificates, read at
// each handshake (see picker), asks for no client certificate and bounds
// versions and cipher suites as p says.
func (c Credentials) outsideServerConfig(p *Server) *tls.Config {
	return &tls.Config{
		GetCertificate: c.Certificates.picker(p.Certificates),
		ClientAuth:     tls.NoClientCert,
		MinVersion:     p.MinVersion,
		MaxVersion:     p.MaxVersion,
		CipherSuites:   p.CipherSuites,
		NextProtos:     p.ALPN,
	}
}

// picker returns a GetCertificate presenting one of the named
// certificates as crypto/tls picks among Config.Certificates: the first
// the client supports — its server name (SNI) among the certificate's
// names, its key among the signature schemes and cipher suites the
// client offers — else the first. Names not received yet are skipped;
// with none received the handshake fails, naming the first.
func (c *Certificates) picker(names []string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		var first *tls.Certificate
		for _, name := range names {
			cert := c.Get(name)
			if cert == nil {
				continue
			}
			if first == nil {
				first = cert
			}
			if len(names) == 1 || hello.SupportsCertificate(cert) == nil {
				return cert, nil
			}
		}
		if first == nil {
			return nil, fmt.Errorf("certificate %q has not been received", names[0])
		}
		return first, nil
	}
}

// CertificateInfo describes a certificate received over SDS for the
// admin API; never its key.
type CertificateInfo struct {
	Subject   string    `json:"subject"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	SHA256    string    `json:"sha256_fingerprint"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// InfoOf describes cert's leaf.
func InfoOf(cert *tls.Certificate) CertificateInfo {
	l := cert.Leaf
	return CertificateInfo{Subject: l.Subject.String(), DNSNames: l.DNSNames, SHA256: Fingerprint(l), NotBefore: l.NotBefore, NotAfter: l.NotAfter}
}
