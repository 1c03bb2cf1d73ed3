// Package identity is weft-proxy's workload identity: it holds the
// sidecar's leaf certificate and keeps it fresh.
//
// The Manager generates an ECDSA P-256 key in memory (never sent; written
// only to the sidecar's own state directory when one is configured, see
// Restore), sends a CSR to the control plane's certificate service and
// installs the signed leaf in an atomic pointer that TLS handshakes read
// (GetCertificate, GetClientCertificate): new handshakes use a new leaf at
// once, established connections keep theirs. It renews at a jittered
// fraction (0.6–0.7) of the leaf's remaining lifetime when it arrives
// (its lifetime, for a leaf that is not backdated), retries failures with backoff
// while the current leaf stays in use, and renews at once when the trust
// bundle changes and the leaf does not chain to the bundle's first root
// (root rotation).
package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/backoff"
)

// Signer has a CSR signed. It is called from the Manager's Run goroutine
// only and should fail within a bounded time.
type Signer interface {
	Sign(ctx context.Context, csrDER []byte) (*certsv1.SignResponse, error)
}

// Backoff paces retries: Delay(n) is the wait before retry n (from 0).
type Backoff interface {
	Delay(n int) time.Duration
}

// Options configure a Manager.
type Options struct {
	// Signer signs CSRs. Required.
	Signer Signer
	// Backoff paces retries after a failed renewal (default 250ms
	// doubling up to 30s, the last fifth of each delay random).
	Backoff Backoff
	// RenewFraction returns the fraction of a leaf's lifetime after which
	// it is renewed (default uniform in [0.6, 0.7)).
	RenewFraction func() float64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the manager's logs (default slog.Default()).
	Logger *slog.Logger
	// OnIssue, if set, is called from Run with every newly issued leaf,
	// e.g. to persist it (see Restore). It must not block for long.
	OnIssue func(*Leaf)
	// Request, if set, returns the template of each CSR (its DNS names and
	// URI SAN: an ingress gateway's leaf for outside clients); nil sends
	// a CSR with no name, the signer deciding the identity. A leaf that
	// lacks a DNS name the template asks for is refused. Called from Run.
	Request func() *x509.CertificateRequest
}

// ErrNoLeaf fails handshakes while there is no leaf certificate yet.
var ErrNoLeaf = errors.New("no leaf certificate yet")

// Manager holds and renews the leaf certificate. Create it with New and
// start it with Run; it asks for its first leaf once Want is called.
//
// GetCertificate, GetClientCertificate, Current, Status and HasLeaf are
// safe for concurrent use and do not block. Want, Renew and SetRoots may
// be called from any goroutine.
type Manager struct {
	opts Options
	log  *slog.Logger

	leaf   atomic.Pointer[Leaf]
	roots  atomic.Pointer[[]*x509.Certificate]
	forced atomic.Bool
	wake   chan struct{}

	wantOnce sync.Once
	wanted   chan struct{}

	mu     sync.Mutex // guards status
	status Status
}

// New returns a Manager. It has no side effects.
func New(opts Options) *Manager {
	if opts.Backoff == nil {
		opts.Backoff = backoff.Policy{Base: 250 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}
	}
	if opts.RenewFraction == nil {
		opts.RenewFraction = func() float64 { return 0.6 + 0.1*rand.Float64() }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Manager{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), wanted: make(chan struct{})}
}

// Want asks for a leaf: the first call lets Run fetch one. Idempotent.
func (m *Manager) Want() { m.wantOnce.Do(func() { close(m.wanted) }) }

// Renew makes Run renew the leaf now (after the backoff of a failure).
func (m *Manager) Renew() {
	m.forced.Store(true)
	m.poke()
}

// SetRoots records the trust bundle (first root first). When the leaf
// does not chain to roots[0], Run renews it at once.
func (m *Manager) SetRoots(roots []*x509.Certificate) {
	m.roots.Store(&roots)
	m.poke()
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// GetCertificate serves the leaf to TLS servers.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if l := m.leaf.Load(); l != nil {
		return &l.Cert, nil
	}
	return nil, ErrNoLeaf
}

// GetClientCertificate serves the leaf to TLS clients.
func (m *Manager) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if l := m.leaf.Load(); l != nil {
		return &l.Cert, nil
	}
	return nil, ErrNoLeaf
}

// Current returns the leaf in use, or nil.
func (m *Manager) Current() *Leaf { return m.leaf.Load() }

// HasLeaf reports whether a leaf has been obtained.
func (m *Manager) HasLeaf() bool { return m.leaf.Load() != nil }

// SPIFFEID returns the leaf's SPIFFE ID, or "" before the first leaf.
func (m *Manager) SPIFFEID() string {
	if l := m.leaf.Load(); l != nil {
		return l.ID.String()
	}
	return ""
}

// Run obtains and renews the leaf until ctx is cancelled. It waits for
// Want before asking for the first leaf. It always returns nil.
func (m *Manager) Run(ctx context.Context) error {
	select {
	case <-m.wanted:
	case <-ctx.Done():
		return nil
	}
	var r retry
	for {
		if !m.sleepUntil(ctx, m.due(&r)) {
			return nil
		}
		if !m.needsRenewal(&r) {
			continue
		}
		reason := m.renewReason()
		forced := m.forced.Swap(false)
		leaf, err := m.renew(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if forced {
				m.forced.Store(true) // a requested renewal is retried too
			}
			r.fail(m.opts.Now(), m.opts.Backoff, m.leaf.Load())
			m.recordError(err)
			m.log.Warn("leaf certificate renewal failed; retrying", "reason", reason, "error", err, "retry_in", r.at.Sub(m.opts.Now()))
			continue
		}
		m.install(leaf)
		if m.opts.OnIssue != nil {
			m.opts.OnIssue(leaf)
		}
		m.log.Info("leaf certificate issued", "reason", reason, "spiffe_id", leaf.ID.String(), "serial", leaf.Serial(),
			"not_after", leaf.Cert.Leaf.NotAfter, "renew_at", leaf.RenewAt)
		if m.staleRoot(leaf) {
			// The signer is still signing with an older root: try again.
			r.fail(m.opts.Now(), m.opts.Backoff, m.leaf.Load())
			m.log.Warn("new leaf does not chain to the trust bundle's first root; renewing again", "retry_in", r.at.Sub(m.opts.Now()))
			continue
		}
		r = retry{}
	}
}

// retry is the backoff state after failed renewals.
type retry struct {
	failures int
	at       time.Time // no attempt before this
}

// fail schedules the retry after a failure; until a first leaf is held the
// delay is shorter (backoff.UntilFirstSuccess), so a sidecar started before
// its control plane gets its leaf within a second of it coming up, and
// within 25 ms after a first failure moments before. While the current
// leaf runs out, the delay is at most a quarter of the time it has left
// (at least minRetryNearExpiry): a control plane that could not sign for
// a while (Consul restarting, say) is asked again several times before
// the leaf expires, instead of once after a long backoff. Once it has
// expired, every mTLS handshake with it fails, so the delay is at most
// maxRetryExpired: a control plane back after a longer outage renews it
// within a second, not after a backoff grown to 30 s meanwhile (which the
// soak saw: a TCP upstream refused for 30 s after the control plane came
// back).
func (r *retry) fail(now time.Time, b Backoff, current *Leaf) {
	d := backoff.UntilFirstSuccess(b.Delay(r.failures), r.failures, current != nil)
	if current != nil {
		if left := current.Cert.Leaf.NotAfter.Sub(now); left > 0 {
			d = min(d, max(left/4, minRetryNearExpiry))
		} else {
			d = min(d, maxRetryExpired)
		}
	}
	r.at = now.Add(d)
	r.failures++
}

// minRetryNearExpiry bounds how often renewal is retried as the leaf runs
// out; maxRetryExpired bounds the wait between retries once it ran out.
const (
	minRetryNearExpiry = 100 * time.Millisecond
	maxRetryExpired    = time.Second
)

// due is when the next renewal should happen.
func (m *Manager) due(r *retry) time.Time {
	t := m.opts.Now()
	if l := m.leaf.Load(); l != nil && !m.forced.Load() && !m.staleRoot(l) {
		t = l.RenewAt
	}
	if t.Before(r.at) {
		t = r.at
	}
	return t
}

// needsRenewal re-checks, after a wake-up, that renewal is due.
func (m *Manager) needsRenewal(r *retry) bool {
	due := m.due(r)
	return !m.opts.Now().Before(due)
}

func (m *Manager) renewReason() string {
	l := m.leaf.Load()
	switch {
	case l == nil:
		return "first leaf"
	case m.staleRoot(l):
		return "trust bundle rotated"
	case m.opts.Now().Before(l.RenewAt):
		return "renewal requested"
	}
	return "scheduled renewal"
}

// sleepUntil waits for t, a wake-up or ctx; it reports false when ctx is
// done.
func (m *Manager) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(m.opts.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-m.wake:
	}
	return true
}

// staleRoot reports whether the trust bundle is known and l does not chain
// to its first root.
func (m *Manager) staleRoot(l *Leaf) bool {
	roots := m.roots.Load()
	if roots == nil || len(*roots) == 0 {
		return false
	}
	return !l.chainsTo((*roots)[0], m.opts.Now())
}
