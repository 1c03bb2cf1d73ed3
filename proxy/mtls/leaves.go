package mtls

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Leaves holds the leaf certificates of the services a proxy presents
// besides its own — a terminating gateway's linked services — by service
// name, for handshakes to read without locks. The zero Leaves holds none.
type Leaves struct {
	byService atomic.Pointer[map[string]Leaf]
}

// Get returns the named service's leaf, or nil.
func (l *Leaves) Get(service string) Leaf {
	if l == nil {
		return nil
	}
	if m := l.byService.Load(); m != nil {
		return (*m)[service]
	}
	return nil
}

// Set replaces every leaf. The map is owned by l afterwards.
func (l *Leaves) Set(byService map[string]Leaf) { l.byService.Store(&byService) }

// linkedLeaf is the Leaf of one linked service, looked up at every
// handshake so that a leaf installed after the configuration is found.
type linkedLeaf struct {
	leaves  *Leaves
	service string
}

func (l linkedLeaf) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	leaf, err := l.get()
	if err != nil {
		return nil, err
	}
	cert, err := leaf.GetCertificate(h)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate of service %q: %w", l.service, err)
	}
	return cert, nil
}

func (l linkedLeaf) GetClientCertificate(r *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	leaf, err := l.get()
	if err != nil {
		return nil, err
	}
	cert, err := leaf.GetClientCertificate(r)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate of service %q: %w", l.service, err)
	}
	return cert, nil
}

func (l linkedLeaf) get() (Leaf, error) {
	if leaf := l.leaves.Get(l.service); leaf != nil {
		return leaf, nil
	}
	return nil, fmt.Errorf("no leaf certificate for service %q", l.service)
}
