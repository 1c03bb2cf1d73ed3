package identity

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types of an encoded leaf.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
)

// MarshalLeaf encodes l as PEM: its chain (leaf first) and its PKCS #8
// private key. The result holds the private key: whoever stores it must
// keep it readable by the sidecar only.
func MarshalLeaf(l *Leaf) ([]byte, error) {
	key, ok := l.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("leaf key is %T, want *ecdsa.PrivateKey", l.Cert.PrivateKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal leaf key: %w", err)
	}
	var out []byte
	for _, c := range l.Cert.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c})...)
	}
	return append(out, pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der})...), nil
}

// Restore installs a leaf that MarshalLeaf encoded before a restart, so
// that the sidecar can serve mTLS before the certificate service answers.
// It is checked as a freshly issued leaf is (key matches, one SPIFFE ID,
// valid now): an expired leaf is refused. Its renewal is scheduled as for
// a new leaf, from now. Call it before Run; it does not count as a
// renewal.
func (m *Manager) Restore(encoded []byte) (*Leaf, error) {
	var certs [][]byte
	var key *ecdsa.PrivateKey
	for rest := encoded; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case pemCertificate:
			certs = append(certs, b.Bytes)
		case pemPrivateKey:
			if key != nil {
				return nil, errors.New("saved leaf: two private keys")
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("saved leaf: private key: %w", err)
			}
			if key, _ = k.(*ecdsa.PrivateKey); key == nil {
				return nil, fmt.Errorf("saved leaf: private key is %T, want ECDSA", k)
			}
		default:
			return nil, fmt.Errorf("saved leaf: unexpected PEM block %q", b.Type)
		}
	}
	if len(certs) == 0 || key == nil {
		return nil, errors.New("saved leaf: want at least one CERTIFICATE and a PRIVATE KEY")
	}
	l, err := m.leafFrom(key, certs[0], certs[1:], "")
	if err != nil {
		return nil, fmt.Errorf("saved leaf: %w", err)
	}
	m.leaf.Store(l)
	return l, nil
}
