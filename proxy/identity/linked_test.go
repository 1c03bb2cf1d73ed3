package identity

import (
	"context"
	"crypto/x509"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
)

// linkedSigners sign each service's CSRs for that service's identity with
// the current CA; the signer of a service in block reports the service on
// blocked, waits for its context instead, and reports the service on
// cancelled when that context ends.
type linkedSigners struct {
	ca        atomic.Pointer[pkitest.CA]
	block     map[string]bool
	blocked   chan string
	cancelled chan string
}

type linkedSigner struct {
	all     *linkedSigners
	service string
}

func (s linkedSigner) Sign(ctx context.Context, csr []byte) (*certsv1.SignResponse, error) {
	if s.all.block[s.service] {
		s.all.blocked <- s.service
		<-ctx.Done()
		s.all.cancelled <- s.service
		return nil, ctx.Err()
	}
	id := pkitest.ID(s.service)
	der, err := s.all.ca.Load().SignCSR(csr, id, time.Hour)
	if err != nil {
		return nil, err
	}
	return &certsv1.SignResponse{Certificate: der, SpiffeId: id}, nil
}

// runLinked runs a Linked over signers until the test ends.
func runLinked(t *testing.T, signers *linkedSigners) *Linked {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := NewLinked(func(service string) *Manager {
		return New(Options{Signer: linkedSigner{signers, service}, Backoff: fixedBackoff(10 * time.Millisecond), Logger: log.With("linked_service", service)})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func leafID(m *Manager) string {
	if m == nil {
		return ""
	}
	return m.SPIFFEID()
}

// TestLinkedRunsOneManagerPerService: Set starts a manager per service,
// each with its own leaf for its service, keeps those still listed and
// stops the others.
func TestLinkedRunsOneManagerPerService(t *testing.T) {
	signers := &linkedSigners{block: map[string]bool{"slow": true}, blocked: make(chan string, 1), cancelled: make(chan string, 1)}
	signers.ca.Store(pkitest.NewCA(t, "root"))
	l := runLinked(t, signers)

	first := l.Set([]string{"ext", "db", "slow"})
	if len(first) != 3 {
		t.Fatalf("Set returned %d managers, want 3", len(first))
	}
	for _, svc := range []string{"ext", "db"} {
		poll.UntilTrue(t, wait, "leaf of "+svc, func() bool { return leafID(l.Get(svc)) == pkitest.ID(svc) })
	}
	select {
	case <-signers.blocked: // slow's manager is signing: stopping it must cancel that
	case <-time.After(wait):
		t.Fatal("the manager of slow never asked for its leaf")
	}

	second := l.Set([]string{"db", "billing"})
	if second["db"] != first["db"] {
		t.Error("the manager of a service still listed was replaced")
	}
	if l.Get("ext") != nil || l.Get("slow") != nil {
		t.Error("managers of services no longer listed are still there")
	}
	select {
	case svc := <-signers.cancelled:
		if svc != "slow" {
			t.Errorf("cancelled the signing of %q, want slow", svc)
		}
	case <-time.After(wait):
		t.Fatal("the manager of a removed service is still signing")
	}
	poll.UntilTrue(t, wait, "leaf of billing", func() bool { return leafID(l.Get("billing")) == pkitest.ID("billing") })
	status := l.Status()
	if got := slices.Sorted(maps.Keys(status)); !slices.Equal(got, []string{"billing", "db"}) {
		t.Errorf("Status for %q, want billing and db", got)
	}
	if st := status["db"]; st.Leaf == nil || st.Leaf.SPIFFEID != pkitest.ID("db") {
		t.Errorf("Status[db] = %+v", st)
	}
}

// TestLinkedRootsReachEveryManager: a new trust bundle reaches every
// running manager (each re-issues its leaf from the new first root) and
// the managers created afterwards.
func TestLinkedRootsReachEveryManager(t *testing.T) {
	old, next := pkitest.NewCA(t, "old"), pkitest.NewCA(t, "new")
	signers := &linkedSigners{}
	signers.ca.Store(old)
	l := runLinked(t, signers)
	l.SetRoots([]*x509.Certificate{old.Cert})
	l.Set([]string{"ext", "db"})
	chainsTo := func(svc string, root *x509.Certificate) bool {
		m := l.Get(svc)
		return m != nil && m.Current() != nil && m.Current().chainsTo(root, time.Now())
	}
	poll.UntilTrue(t, wait, "leaves from the old root", func() bool { return chainsTo("ext", old.Cert) && chainsTo("db", old.Cert) })

	signers.ca.Store(next)
	l.SetRoots([]*x509.Certificate{next.Cert, old.Cert})
	poll.UntilTrue(t, wait, "leaves re-issued from the new root", func() bool { return chainsTo("ext", next.Cert) && chainsTo("db", next.Cert) })

	l.Set([]string{"ext", "db", "billing"})
	if roots := l.Get("billing").roots.Load(); roots == nil || len(*roots) != 2 || !(*roots)[0].Equal(next.Cert) {
		t.Errorf("a manager created after the bundle changed has roots %v, want [new, old]", roots)
	}
}

// TestLinkedManagersWaitForRun: managers Set creates before Run start
// with it, and Run returns once they all have.
func TestLinkedManagersWaitForRun(t *testing.T) {
	signers := &linkedSigners{}
	signers.ca.Store(pkitest.NewCA(t, "root"))
	l := NewLinked(func(service string) *Manager {
		return New(Options{Signer: linkedSigner{signers, service}, Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	})
	l.Set([]string{"ext"})
	if l.Get("ext").HasLeaf() {
		t.Fatal("a leaf before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	poll.UntilTrue(t, wait, "leaf of ext", func() bool { return l.Get("ext").HasLeaf() })
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Run did not return after its context ended")
	}
}
