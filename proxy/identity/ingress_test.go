package identity

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/internal/poll"
)

// ingressSigner signs as the certificate service signs an ingress
// gateway's leaf: the CSR's DNS names only if each is in allowed.
type ingressSigner struct {
	ca      *certs.CA
	id      spiffeid.ID
	allowed atomic.Pointer[[]string]
}

func (s *ingressSigner) Sign(_ context.Context, csr []byte) (*certsv1.SignResponse, error) {
	leaf, err := s.ca.Sign(csr, s.id, time.Hour, time.Now(), *s.allowed.Load()...)
	if err != nil {
		return nil, err
	}
	return &certsv1.SignResponse{Certificate: leaf.Raw, SpiffeId: s.id.String()}, nil
}

func newIngressSigner(t *testing.T, allowed ...string) *ingressSigner {
	td := spiffeid.RequireTrustDomainFromString("weft.test")
	ca, err := certs.NewRootCA(td, time.Now(), time.Hour*24)
	if err != nil {
		t.Fatal(err)
	}
	s := &ingressSigner{ca: ca, id: spiffeid.RequireFromPath(td, "/ns/default/dc/dc1/svc/ingress")}
	s.allowed.Store(&allowed)
	return s
}

// runIngress runs an Ingress over signer until the test ends; issued
// counts the leaves it reports.
func runIngress(t *testing.T, signer *ingressSigner, issued *atomic.Int32) *Ingress {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := NewIngress(func(names []string, onIssue func(*Leaf)) *Manager {
		return New(Options{Signer: signer, Backoff: fixedBackoff(10 * time.Millisecond), Logger: log, OnIssue: onIssue,
			Request: func() *x509.CertificateRequest {
				return &x509.CertificateRequest{DNSNames: names, URIs: []*url.URL{signer.id.URL()}}
			}})
	}, func() { issued.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return in
}

func dnsNamesOf(l *Leaf) []string {
	if l == nil {
		return nil
	}
	return l.Cert.Leaf.DNSNames
}

// TestIngressLeafFollowsTheDNSNames: the leaf carries the names Set
// gives and the gateway's SPIFFE ID; new names get a new leaf, the
// previous one presented until it comes; names the signer refuses keep
// the previous leaf; nil stops it all.
func TestIngressLeafFollowsTheDNSNames(t *testing.T) {
	first := []string{"*.ingress.consul", "api.example.com"}
	second := []string{"*.ingress.consul", "api.example.com", "web.example.com"}
	signer := newIngressSigner(t, first...)
	var issued atomic.Int32
	in := runIngress(t, signer, &issued)
	if in.Current() != nil || in.Status() != nil {
		t.Fatal("a leaf or a manager before Set")
	}

	in.Set(first)
	poll.UntilTrue(t, wait, "first leaf", func() bool { return slices.Equal(dnsNamesOf(in.Current()), first) })
	if got := in.Current().ID; got != signer.id {
		t.Errorf("leaf SPIFFE ID %s, want %s", got, signer.id)
	}
	in.Set(slices.Clone(first))
	if n := in.Status().Renewals; n != 1 {
		t.Errorf("the same names again: %d renewals, want 1 (no new manager)", n)
	}

	// The signer does not allow web.example.com yet: the first leaf stays.
	in.Set(second)
	poll.UntilTrue(t, wait, "the refusal", func() bool { return in.Status().LastError != "" })
	if got := dnsNamesOf(in.Current()); !slices.Equal(got, first) {
		t.Fatalf("while the new leaf is refused the leaf has %q, want the previous %q", got, first)
	}
	signer.allowed.Store(&second)
	poll.UntilTrue(t, wait, "second leaf", func() bool { return slices.Equal(dnsNamesOf(in.Current()), second) })
	if issued.Load() != 2 {
		t.Errorf("onIssue called %d times, want 2", issued.Load())
	}

	in.Set(nil)
	if in.Current() != nil || in.Status() != nil {
		t.Error("a leaf or a manager after Set(nil)")
	}
}
