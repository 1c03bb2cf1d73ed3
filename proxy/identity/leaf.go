package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// signTimeout bounds one Sign call.
const signTimeout = 30 * time.Second

// Leaf is one issued leaf certificate with its private key. It is
// immutable.
type Leaf struct {
	// Cert is the chain (leaf first, then intermediates) with the key;
	// Cert.Leaf is the parsed leaf.
	Cert tls.Certificate
	// Intermediates are the parsed intermediates, leaf's issuer first.
	Intermediates []*x509.Certificate
	ID            spiffeid.ID
	// RenewAt is when the manager renews it.
	RenewAt time.Time
}

// Serial is the leaf's serial number in hex.
func (l *Leaf) Serial() string { return l.Cert.Leaf.SerialNumber.Text(16) }

// chainsTo reports whether the leaf chains to root at now.
func (l *Leaf) chainsTo(root *x509.Certificate, now time.Time) bool {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if len(l.Intermediates) > 0 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range l.Intermediates {
			opts.Intermediates.AddCert(c)
		}
	}
	_, err := l.Cert.Leaf.Verify(opts)
	return err == nil
}

// renew generates a key, has a CSR signed and checks the result.
func (m *Manager) renew(ctx context.Context) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.CertificateRequest{}
	if m.opts.Request != nil {
		tmpl = m.opts.Request()
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, signTimeout)
	defer cancel()
	resp, err := m.opts.Signer.Sign(ctx, csr)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	leaf, err := m.leafFrom(key, resp.GetCertificate(), resp.GetIntermediates(), resp.GetSpiffeId())
	if err != nil {
		return nil, err
	}
	for _, name := range tmpl.DNSNames {
		if !slices.ContainsFunc(leaf.Cert.Leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return nil, fmt.Errorf("signed leaf lacks the DNS name %q the CSR asks for (it has %q)", name, leaf.Cert.Leaf.DNSNames)
		}
	}
	return leaf, nil
}

// leafFrom checks a signed leaf against the key and the identity the
// signer claims, and schedules its renewal.
func (m *Manager) leafFrom(key *ecdsa.PrivateKey, der []byte, intermediates [][]byte, claimed string) (*Leaf, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse leaf: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, pub) {
		return nil, errors.New("signed leaf does not carry the CSR's public key")
	}
	id, err := x509svid.IDFromCert(cert)
	if err != nil {
		return nil, fmt.Errorf("signed leaf: %w", err)
	}
	if claimed != "" && claimed != id.String() {
		return nil, fmt.Errorf("signed leaf is for %s, but the response says %s", id, claimed)
	}
	now := m.opts.Now()
	if !now.Before(cert.NotAfter) || !cert.NotAfter.After(cert.NotBefore) {
		return nil, fmt.Errorf("signed leaf is not valid now (not before %s, not after %s)", cert.NotBefore, cert.NotAfter)
	}
	l := &Leaf{Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, ID: id}
	for i, raw := range intermediates {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("parse intermediate %d: %w", i, err)
		}
		l.Cert.Certificate = append(l.Cert.Certificate, raw)
		l.Intermediates = append(l.Intermediates, c)
	}
	l.RenewAt = renewAt(cert, now, m.opts.RenewFraction())
	return l, nil
}

// renewAt is when a leaf received at now is renewed: after fraction of
// its lifetime as this sidecar sees it, from the later of its not-before
// and now. Measuring from now keeps a backdated leaf, or one from a
// control plane whose clock is behind, from being due at once.
func renewAt(cert *x509.Certificate, now time.Time, fraction float64) time.Time {
	start := cert.NotBefore
	if now.After(start) {
		start = now
	}
	return start.Add(time.Duration(fraction * float64(cert.NotAfter.Sub(start))))
}

// install makes l the leaf new handshakes use.
func (m *Manager) install(l *Leaf) {
	m.leaf.Store(l)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status.Renewals++
	m.status.LastError = ""
}

func (m *Manager) recordError(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status.LastError = err.Error()
	m.status.LastErrorTime = m.opts.Now()
}

// Status is the manager's state for the admin API.
type Status struct {
	// Leaf describes the leaf in use; nil before the first.
	Leaf *LeafInfo `json:"leaf"`
	// Renewals counts the leaves issued since start.
	Renewals int `json:"renewals"`
	// LastError is why the last renewal failed, empty after a success.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// LeafInfo describes a leaf certificate.
type LeafInfo struct {
	SPIFFEID        string    `json:"spiffe_id"`
	Serial          string    `json:"serial"`
	Issuer          string    `json:"issuer"`
	NotBefore       time.Time `json:"not_before"`
	NotAfter        time.Time `json:"not_after"`
	SecondsToExpiry int64     `json:"seconds_to_expiry"`
	RenewAt         time.Time `json:"renew_at"`
}

// Status returns the current leaf and renewal state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	s := m.status
	m.mu.Unlock()
	if l := m.leaf.Load(); l != nil {
		c := l.Cert.Leaf
		s.Leaf = &LeafInfo{
			SPIFFEID: l.ID.String(), Serial: l.Serial(), Issuer: c.Issuer.String(),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			SecondsToExpiry: int64(c.NotAfter.Sub(m.opts.Now()) / time.Second),
			RenewAt:         l.RenewAt,
		}
	}
	return s
}
