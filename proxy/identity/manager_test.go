package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
)

const wait = 10 * time.Second

var web = pkitest.ID("web")

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// fakeSigner signs with whichever CA is current and reports each CSR.
type fakeSigner struct {
	ca    atomic.Pointer[pkitest.CA]
	ttl   time.Duration
	fail  atomic.Bool
	csrs  chan *x509.CertificateRequest
	calls atomic.Int32
}

func newFakeSigner(ca *pkitest.CA, ttl time.Duration) *fakeSigner {
	s := &fakeSigner{ttl: ttl, csrs: make(chan *x509.CertificateRequest, 100)}
	s.ca.Store(ca)
	return s
}

func (s *fakeSigner) Sign(_ context.Context, csr []byte) (*certsv1.SignResponse, error) {
	s.calls.Add(1)
	if s.fail.Load() {
		return nil, errors.New("control plane unavailable")
	}
	parsed, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, err
	}
	der, err := s.ca.Load().SignCSR(csr, web, s.ttl)
	if err != nil {
		return nil, err
	}
	s.csrs <- parsed
	return &certsv1.SignResponse{Certificate: der, SpiffeId: web}, nil
}

type fixedBackoff time.Duration

func (b fixedBackoff) Delay(int) time.Duration { return time.Duration(b) }

// start runs a manager until the test ends.
func start(t *testing.T, opts Options) *Manager {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return m
}

// nextCSR waits for the signer's next signature.
func (s *fakeSigner) nextCSR(t *testing.T) *x509.CertificateRequest {
	t.Helper()
	select {
	case csr := <-s.csrs:
		return csr
	case <-time.After(wait):
		t.Fatal("no CSR signed")
		return nil
	}
}

func TestFirstLeafOnlyWhenWanted(t *testing.T) {
	signer := newFakeSigner(pkitest.NewCA(t, "root"), time.Hour)
	m := start(t, Options{Signer: signer})
	if _, err := m.GetCertificate(nil); !errors.Is(err, ErrNoLeaf) {
		t.Fatalf("GetCertificate before the first leaf: %v, want ErrNoLeaf", err)
	}
	m.Want()
	m.Want()
	csr := signer.nextCSR(t)
	key, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("CSR key %T, want ECDSA P-256", csr.PublicKey)
	}
	poll.UntilTrue(t, wait, "leaf", m.HasLeaf)
	cert, err := m.GetCertificate(nil)
	if err != nil || cert.Leaf.URIs[0].String() != web {
		t.Fatalf("GetCertificate = %v, %v", cert, err)
	}
	if client, _ := m.GetClientCertificate(nil); client != cert {
		t.Error("client and server certificates differ")
	}
	st := m.Status()
	if st.Leaf == nil || st.Leaf.SPIFFEID != web || st.Leaf.Serial == "" || st.Leaf.SecondsToExpiry < 3500 || st.Renewals != 1 {
		t.Errorf("Status = %+v", st)
	}
	if m.SPIFFEID() != web {
		t.Errorf("SPIFFEID = %q", m.SPIFFEID())
	}
}

func TestRenewsAtFractionOfLifetimeWithNewKey(t *testing.T) {
	signer := newFakeSigner(pkitest.NewCA(t, "root"), time.Minute)
	// 0.002 of a minute: renew about every 120ms.
	m := start(t, Options{Signer: signer, RenewFraction: func() float64 { return 0.002 }})
	m.Want()
	first := signer.nextCSR(t)
	poll.UntilTrue(t, wait, "first leaf", m.HasLeaf)
	leaf := m.Current()
	if d := time.Until(leaf.RenewAt); d > 120*time.Millisecond {
		t.Errorf("RenewAt in %v, want within 0.002 of a minute", d)
	}
	second := signer.nextCSR(t)
	if first.PublicKey.(*ecdsa.PublicKey).Equal(second.PublicKey) {
		t.Error("renewal reused the key")
	}
	poll.UntilTrue(t, wait, "renewed leaf", func() bool { return m.Current() != leaf })
	if m.Current().Serial() == leaf.Serial() {
		t.Error("renewal kept the serial")
	}
}

func TestRenewAt(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name                string
		notBefore, notAfter time.Time
		want                time.Time
	}{
		{"fresh", now, now.Add(24 * time.Hour), now.Add(16 * time.Hour)},
		{"backdated a minute", now.Add(-time.Minute), now.Add(time.Minute), now.Add(40 * time.Second)},
		{"issuer clock ahead", now.Add(time.Hour), now.Add(4 * time.Hour), now.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		cert := &x509.Certificate{NotBefore: tt.notBefore, NotAfter: tt.notAfter}
		if got := renewAt(cert, now, 2.0/3); !got.Equal(tt.want) {
			t.Errorf("%s: renewAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDefaultRenewFractionIsJittered(t *testing.T) {
	m := New(Options{Signer: newFakeSigner(nil, 0)})
	seen := map[float64]bool{}
	for range 100 {
		f := m.opts.RenewFraction()
		if f < 0.6 || f >= 0.7 {
			t.Fatalf("fraction %v outside [0.6, 0.7)", f)
		}
		seen[f] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct fractions in 100", len(seen))
	}
}

func TestFailedRenewalKeepsLeafAndRetries(t *testing.T) {
	signer := newFakeSigner(pkitest.NewCA(t, "root"), time.Hour)
	m := start(t, Options{Signer: signer, Backoff: fixedBackoff(10 * time.Millisecond)})
	m.Want()
	poll.UntilTrue(t, wait, "leaf", m.HasLeaf)
	leaf := m.Current()
	signer.fail.Store(true)
	calls := signer.calls.Load()
	m.Renew()
	poll.UntilTrue(t, wait, "three failed attempts", func() bool { return signer.calls.Load() >= calls+3 })
	if m.Current() != leaf {
		t.Fatal("a failed renewal replaced the leaf")
	}
	if st := m.Status(); !strings.Contains(st.LastError, "control plane unavailable") {
		t.Errorf("Status.LastError = %q", st.LastError)
	}
	signer.fail.Store(false)
	poll.UntilTrue(t, wait, "renewed leaf", func() bool { return m.Current() != leaf })
	if st := m.Status(); st.LastError != "" || st.Renewals != 2 {
		t.Errorf("after recovery Status = %+v", st)
	}
}

// TestRootRotation: a leaf is re-issued at once when the bundle's first
// root is not its root, and not otherwise.
func TestRootRotation(t *testing.T) {
	old, next := pkitest.NewCA(t, "old"), pkitest.NewCA(t, "new")
	signer := newFakeSigner(old, time.Hour)
	m := start(t, Options{Signer: signer, Backoff: fixedBackoff(10 * time.Millisecond)})
	m.SetRoots([]*x509.Certificate{old.Cert})
	m.Want()
	poll.UntilTrue(t, wait, "leaf", m.HasLeaf)
	first := m.Current()

	m.SetRoots([]*x509.Certificate{old.Cert, next.Cert})
	if due := m.due(&retry{}); !due.Equal(first.RenewAt) {
		t.Errorf("bundle [old, new]: renewal due %v, want the scheduled %v", due, first.RenewAt)
	}

	signer.ca.Store(next)
	m.SetRoots([]*x509.Certificate{next.Cert, old.Cert})
	poll.UntilTrue(t, wait, "leaf from the new root", func() bool { return m.Current().chainsTo(next.Cert, time.Now()) })
	second := m.Current()
	if due := m.due(&retry{}); !due.Equal(second.RenewAt) {
		t.Errorf("after re-issue: renewal due %v, want the scheduled %v", due, second.RenewAt)
	}
	m.SetRoots([]*x509.Certificate{next.Cert})
	if due := m.due(&retry{}); !due.Equal(second.RenewAt) {
		t.Errorf("bundle [new]: renewal due %v, want the scheduled %v", due, second.RenewAt)
	}
}

// TestSignerLaggingRootRetriesWithBackoff: a signer still on the old root
// does not make the manager spin: it backs off between attempts.
func TestSignerLaggingRootRetriesWithBackoff(t *testing.T) {
	old, next := pkitest.NewCA(t, "old"), pkitest.NewCA(t, "new")
	signer := newFakeSigner(old, time.Hour)
	backoff := &countingBackoff{d: 10 * time.Millisecond}
	m := start(t, Options{Signer: signer, Backoff: backoff})
	m.Want()
	signer.nextCSR(t) // first leaf
	poll.UntilTrue(t, wait, "leaf", m.HasLeaf)
	m.SetRoots([]*x509.Certificate{next.Cert, old.Cert})
	signer.nextCSR(t) // re-issued, still from the old root
	signer.nextCSR(t) // retried
	if n := backoff.calls.Load(); n < 1 {
		t.Errorf("retried a stale leaf after %d backoff delays, want at least one", n)
	}
	signer.ca.Store(next)
	poll.UntilTrue(t, wait, "leaf from the new root", func() bool { return m.Current().chainsTo(next.Cert, time.Now()) })
}

type countingBackoff struct {
	d     time.Duration
	calls atomic.Int32
}

func (b *countingBackoff) Delay(int) time.Duration {
	b.calls.Add(1)
	return b.d
}

func TestRejectsBadResponses(t *testing.T) {
	ca := pkitest.NewCA(t, "root")
	m := New(Options{Signer: newFakeSigner(ca, time.Hour)})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrFor := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good, err := ca.SignCSR(csrFor(key), web, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKeys, _ := ca.SignCSR(csrFor(otherKey), web, time.Hour)
	tests := []struct {
		name    string
		der     []byte
		claimed string
		wantErr string
	}{
		{"garbage", []byte("x"), web, "parse leaf"},
		{"someone else's key", otherKeys, web, "public key"},
		{"claims another identity", good, pkitest.ID("db"), "response says"},
	}
	for _, tt := range tests {
		if _, err := m.leafFrom(key, tt.der, nil, tt.claimed); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	if _, err := m.leafFrom(key, good, [][]byte{[]byte("junk")}, web); err == nil {
		t.Error("junk intermediate accepted")
	}
}

// TestRetriesBeforeTheLeafExpires: with a long backoff, failed renewals of
// a leaf about to expire are still retried within a quarter of the time
// it has left, so a control plane back before expiry renews it in time.
func TestRetriesBeforeTheLeafExpires(t *testing.T) {
	signer := newFakeSigner(pkitest.NewCA(t, "root"), 4*time.Second)
	m := start(t, Options{Signer: signer, Backoff: fixedBackoff(time.Hour), RenewFraction: func() float64 { return 0.5 }})
	m.Want()
	poll.UntilTrue(t, wait, "leaf", m.HasLeaf)
	first := m.Current()
	signer.fail.Store(true)
	// Renewal is due 2 s in; with a backoff of an hour, only the cap
	// brings the next attempts before the leaf expires at 4 s.
	poll.UntilTrue(t, 10*time.Second, "three failed attempts before expiry", func() bool { return signer.calls.Load() >= 4 })
	if time.Now().After(first.Cert.Leaf.NotAfter) {
		t.Fatalf("the third retry came after the leaf expired at %v", first.Cert.Leaf.NotAfter)
	}
	signer.fail.Store(false)
	poll.UntilTrue(t, 10*time.Second, "a renewed leaf", func() bool { return m.Current() != first })
	if time.Now().After(first.Cert.Leaf.NotAfter) {
		t.Errorf("renewed only after the leaf expired at %v", first.Cert.Leaf.NotAfter)
	}
}

// TestRetriesEverySecondOnceTheLeafExpired: renewals that kept failing
// until the leaf expired (a control plane down for longer than the time
// the leaf had left) are retried at least every second from then on, so
// the leaf is renewed within about a second of the control plane coming
// back, whatever the backoff grew to.
func TestRetriesEverySecondOnceTheLeafExpired(t *testing.T) {
	signer := newFakeSigner(pkitest.NewCA(t, "root"), 2*time.Second)
	m := start(t, Options{Signer: signer, Backoff: fixedBackoff(time.Hour), RenewFraction: func() float64 { return 0.5 }})
	m.Want()
	poll.UntilTrue(t, wait, "leaf", m.HasLeaf)
	first := m.Current()
	signer.fail.Store(true)
	expired := first.Cert.Leaf.NotAfter
	poll.UntilTrue(t, 10*time.Second, "two failed attempts after the leaf expired", func() bool {
		return time.Now().After(expired.Add(1500*time.Millisecond)) && signer.calls.Load() >= 4
	})
	signer.fail.Store(false)
	back := time.Now()
	poll.UntilTrue(t, 10*time.Second, "a renewed leaf", func() bool { return m.Current() != first })
	if took := time.Since(back); took > 3*time.Second {
		t.Errorf("renewed %v after the signer came back, want within about a second", took)
	}
}
