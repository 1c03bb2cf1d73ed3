package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Rotation phases of the trust bundle.
const (
	PhaseStable   = "stable"   // one root signs and is trusted
	PhaseAdding   = "adding"   // a new root is trusted but does not sign yet
	PhaseSwitched = "switched" // the new root signs; the old one is still trusted
)

// pending and previous roots of a rotation, persisted beside the active CA
// so a restart mid-rotation resumes it.
const (
	nextDir      = "next"
	previousFile = "previous.crt"
)

// AuthorityConfig configures an Authority.
type AuthorityConfig struct {
	TrustDomain spiffeid.TrustDomain
	// Dir persists the root CA (tls.crt, tls.key) and rotation state.
	Dir string
	// Plugged, when set, signs with an operator's intermediate instead of
	// a generated root; root rotation is then the operator's.
	Plugged *CA
	// LeafTTL is the lifetime of issued leaves; default 24 h, minimum 1 min.
	LeafTTL time.Duration
	Now     func() time.Time
}

// Authority is the mesh's CA: the signer and the trust bundle, through a
// root rotation. It is safe for concurrent use.
type Authority struct {
	cfg     AuthorityConfig
	mu      sync.Mutex
	active  *CA
	next    *CA                 // PhaseAdding: trusted, not yet signing
	old     []*x509.Certificate // PhaseSwitched: still trusted, no longer signing
	changed chan struct{}
}

// OpenAuthority loads the CA from cfg.Dir (creating a root on first start)
// or uses cfg.Plugged, and resumes a rotation in progress.
func OpenAuthority(cfg AuthorityConfig) (*Authority, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LeafTTL == 0 {
		cfg.LeafTTL = DefaultLeafTTL
	}
	if cfg.LeafTTL < MinLeafTTL {
		return nil, fmt.Errorf("leaf TTL %v: minimum is %v", cfg.LeafTTL, MinLeafTTL)
	}
	a := &Authority{cfg: cfg, changed: make(chan struct{}, 1)}
	if cfg.Plugged != nil {
		a.active = cfg.Plugged
		return a, nil
	}
	active, _, err := LoadOrCreateRoot(cfg.Dir, cfg.TrustDomain, cfg.Now())
	if err != nil {
		return nil, err
	}
	a.active = active
	if err := a.loadRotation(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Authority) loadRotation() error {
	if _, err := os.Stat(filepath.Join(a.cfg.Dir, nextDir, certFile)); err == nil {
		next, _, err := LoadOrCreateRoot(filepath.Join(a.cfg.Dir, nextDir), a.cfg.TrustDomain, a.cfg.Now())
		if err != nil {
			return fmt.Errorf("resume rotation: %w", err)
		}
		a.next = next
	}
	b, err := os.ReadFile(filepath.Join(a.cfg.Dir, previousFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume rotation: %w", err)
	}
	a.old, err = parseCerts(b)
	return err
}

// Changes receives a value after every trust-bundle or signer change.
func (a *Authority) Changes() <-chan struct{} { return a.changed }

// TrustDomain is the mesh's trust domain.
func (a *Authority) TrustDomain() spiffeid.TrustDomain { return a.cfg.TrustDomain }

// Sign issues a leaf for id from a DER CSR with the configured TTL; the
// CSR's DNS names must be among allowedDNS (see CA.Sign).
func (a *Authority) Sign(csrDER []byte, id spiffeid.ID, allowedDNS []string) (leaf *x509.Certificate, chain []*x509.Certificate, err error) {
	a.mu.Lock()
	ca := a.active
	a.mu.Unlock()
	leaf, err = ca.Sign(csrDER, id, a.cfg.LeafTTL, a.cfg.Now(), allowedDNS...)
	return leaf, ca.Chain(), err
}

// Bundle returns the trusted roots, the one that signs leaves first.
func (a *Authority) Bundle() []*x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []*x509.Certificate{a.active.Root()}
	if a.next != nil {
		out = append(out, a.next.Root())
	}
	return append(out, a.old...)
}

// Phase reports where a root rotation stands.
func (a *Authority) Phase() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.next != nil:
		return PhaseAdding
	case len(a.old) > 0:
		return PhaseSwitched
	}
	return PhaseStable
}

// ActiveRoot is the root that currently signs leaves.
func (a *Authority) ActiveRoot() *x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active.Root()
}

// SignerPEM returns the PEM certificate and private key of the CA that
// signs leaves or, with next, of the root a rotation added: what an
// operator hands to another CA that must sign with the same key (Consul's
// built-in Connect CA in the shared mode, certs/consulca). The key then
// lives there too; callers document it.
func (a *Authority) SignerPEM(next bool) (certPEM, keyPEM []byte, err error) {
	a.mu.Lock()
	ca := a.active
	if next {
		ca = a.next
	}
	a.mu.Unlock()
	if ca == nil {
		return nil, nil, errors.New("no new root: run AddRoot first")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal CA key: %w", err)
	}
	return EncodeCerts(ca.cert), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// NextRoot is the root a rotation added, nil in other phases.
func (a *Authority) NextRoot() *x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == nil {
		return nil
	}
	return a.next.Root()
}

// AddRoot starts a rotation: a new root joins the bundle without signing.
func (a *Authority) AddRoot() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.Plugged != nil {
		return errors.New("the CA is an operator's plugged intermediate: rotate it by plugging in a new one")
	}
	if a.next != nil || len(a.old) > 0 {
		return errors.New("a root rotation is already in progress")
	}
	next, _, err := LoadOrCreateRoot(filepath.Join(a.cfg.Dir, nextDir), a.cfg.TrustDomain, a.cfg.Now())
	if err != nil {
		return err
	}
	a.next = next
	a.notify()
	return nil
}

// SwitchRoot makes the new root sign leaves; the old root stays trusted
// until RetireOld.
func (a *Authority) SwitchRoot() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == nil {
		return errors.New("no new root to switch to: run AddRoot first")
	}
	old := a.active
	if err := writeAtomic(filepath.Join(a.cfg.Dir, previousFile), EncodeCerts(append([]*x509.Certificate{old.Root()}, a.old...)...), 0o644); err != nil {
		return err
	}
	if err := a.next.save(a.cfg.Dir); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(a.cfg.Dir, nextDir)); err != nil {
		return fmt.Errorf("finish switching root: %w", err)
	}
	a.active, a.next = a.next, nil
	a.old = append([]*x509.Certificate{old.Root()}, a.old...)
	a.notify()
	return nil
}

// RetireOld drops the previous roots from the bundle.
func (a *Authority) RetireOld() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next != nil {
		return errors.New("the new root does not sign yet: run SwitchRoot first")
	}
	if err := os.Remove(filepath.Join(a.cfg.Dir, previousFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("retire old roots: %w", err)
	}
	a.old = nil
	a.notify()
	return nil
}

func (a *Authority) notify() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// Fingerprint is a certificate's SHA-256 fingerprint in hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
