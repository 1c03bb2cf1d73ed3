package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"
)

// Bundle is a trust bundle: the root certificates of an SDS validation
// context, in order. The first root is the one currently signing leaves.
// A Bundle is immutable.
type Bundle struct {
	Roots []*x509.Certificate
	pool  *x509.CertPool
}

// ParseBundle parses PEM-encoded root certificates. It fails on anything
// that is not a well-formed CERTIFICATE block and when there is none.
func ParseBundle(pemBytes []byte) (*Bundle, error) {
	b := &Bundle{pool: x509.NewCertPool()}
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, want CERTIFICATE", len(b.Roots), block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(b.Roots), err)
		}
		b.Roots = append(b.Roots, cert)
		b.pool.AddCert(cert)
	}
	if len(b.Roots) == 0 {
		return nil, errors.New("no PEM certificates")
	}
	return b, nil
}

// Pool returns the roots as a pool. Callers must not modify it.
func (b *Bundle) Pool() *x509.CertPool { return b.pool }

// RootInfo describes one root for the admin API.
type RootInfo struct {
	Subject   string    `json:"subject"`
	SHA256    string    `json:"sha256_fingerprint"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// Info describes the roots in order.
func (b *Bundle) Info() []RootInfo {
	out := make([]RootInfo, 0, len(b.Roots))
	for _, c := range b.Roots {
		out = append(out, RootInfo{Subject: c.Subject.String(), SHA256: Fingerprint(c), NotBefore: c.NotBefore, NotAfter: c.NotAfter})
	}
	return out
}

// Fingerprint is the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Trust holds the trust bundles by SDS secret name, for handshakes to read
// without locks. The zero Trust holds none.
type Trust struct {
	bundles atomic.Pointer[map[string]*Bundle]
}

// Bundle returns the named bundle, or nil if it has not been received.
func (t *Trust) Bundle(name string) *Bundle {
	if m := t.bundles.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// Set replaces every bundle. The map is owned by t afterwards.
func (t *Trust) Set(bundles map[string]*Bundle) { t.bundles.Store(&bundles) }

// All returns a copy of the bundles by name.
func (t *Trust) All() map[string]*Bundle {
	if m := t.bundles.Load(); m != nil {
		return maps.Clone(*m)
	}
	return map[string]*Bundle{}
}
