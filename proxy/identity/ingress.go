package identity

import (
	"context"
	"crypto/x509"
	"slices"
	"sync"
)

// Ingress runs the manager of an ingress gateway's leaf for clients
// outside the mesh: a leaf with the gateway's SPIFFE ID and the DNS names
// its configuration lists. When the names change, a manager for the new
// names starts and asks for its leaf at once; the previous one keeps
// running, and its leaf stays the one presented (Current), until the new
// one has its first leaf, then it is stopped. Set(nil) stops both.
//
// Set, SetRoots, Current and Status may be called from any goroutine;
// Run owns the managers' goroutines.
type Ingress struct {
	newManager func(dnsNames []string, onIssue func(*Leaf)) *Manager
	onIssue    func()

	mu        sync.Mutex
	run       group
	cur, prev *ingressManager
	roots     []*x509.Certificate
}

type ingressManager struct {
	groupManager
	names []string
}

// NewIngress returns an Ingress that builds the manager of a set of DNS
// names with newManager, which must pass onIssue to the manager's
// Options.OnIssue and ask for those names (Options.Request). onIssue, if
// set, is called after a manager issues a leaf, once Current returns it,
// from that manager's goroutine. It has no side effects.
func NewIngress(newManager func(dnsNames []string, onIssue func(*Leaf)) *Manager, onIssue func()) *Ingress {
	return &Ingress{newManager: newManager, onIssue: onIssue}
}

// Set makes names (sorted, each once) the DNS names of the leaf; nil
// means no listener presents one, which stops the managers.
func (in *Ingress) Set(names []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if names == nil {
		in.cur.halt()
		in.prev.halt()
		in.cur, in.prev = nil, nil
		return
	}
	if in.cur != nil && slices.Equal(in.cur.names, names) {
		return
	}
	next := &ingressManager{names: slices.Clone(names)}
	next.Manager = in.newManager(next.names, func(*Leaf) { in.issued(next) })
	next.Want()
	if in.roots != nil {
		next.SetRoots(in.roots)
	}
	switch {
	case in.cur != nil && in.cur.HasLeaf():
		in.prev.halt() // never presented
		in.prev = in.cur
	default:
		in.cur.halt() // no leaf to present meanwhile
	}
	in.cur = next
	in.run.start(&next.groupManager)
}

// issued retires the previous manager once m, the current one, has a
// leaf, and tells the proxy.
func (in *Ingress) issued(m *ingressManager) {
	in.mu.Lock()
	if in.cur == m && in.prev != nil {
		in.prev.halt()
		in.prev = nil
	}
	in.mu.Unlock()
	if in.onIssue != nil {
		in.onIssue()
	}
}

// halt stops m, if any and started. Called with mu held.
func (m *ingressManager) halt() {
	if m != nil {
		m.groupManager.halt()
	}
}

// Current returns the leaf to present: the current manager's, else, while
// it has none, the previous one's; nil when there is none.
func (in *Ingress) Current() *Leaf {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range []*ingressManager{in.cur, in.prev} {
		if m != nil {
			if l := m.Current(); l != nil {
				return l
			}
		}
	}
	return nil
}

// Status is the current manager's status, nil when there is none.
func (in *Ingress) Status() *Status {
	in.mu.Lock()
	cur := in.cur
	in.mu.Unlock()
	if cur == nil {
		return nil
	}
	s := cur.Status()
	return &s
}

// SetRoots records the trust bundle (first root first) in the managers,
// and in those Set creates later.
func (in *Ingress) SetRoots(roots []*x509.Certificate) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.roots = roots
	for _, m := range []*ingressManager{in.cur, in.prev} {
		if m != nil {
			m.SetRoots(roots)
		}
	}
}

// Run runs the managers, those Set created before and after it started,
// until ctx is cancelled, then waits for them to return. Call it once. It
// always returns nil.
func (in *Ingress) Run(ctx context.Context) error {
	in.run.run(ctx, &in.mu, func() []*groupManager {
		var out []*groupManager
		for _, m := range []*ingressManager{in.cur, in.prev} {
			if m != nil {
				out = append(out, &m.groupManager)
			}
		}
		return out
	})
	return nil
}
