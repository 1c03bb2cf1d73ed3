package identity

import (
	"context"
	"crypto/x509"
	"maps"
	"slices"
	"sync"
)

// Linked runs one Manager per linked service: a service whose leaf the
// proxy presents besides its own, as a terminating gateway presents, per
// server name, the leaves of the services it links to the mesh. Each
// manager has its own key and asks for its service's leaf as soon as it
// runs (no Want needed); a manager whose service the configuration no
// longer names is stopped and forgotten, its leaf with it.
//
// Set, SetRoots, Get and Status may be called from any goroutine; Run
// owns the managers' goroutines.
type Linked struct {
	newManager func(service string) *Manager

	mu       sync.Mutex
	run      group
	managers map[string]*groupManager
	roots    []*x509.Certificate
}

// NewLinked returns a Linked that builds the manager of a service with
// newManager (whose Signer asks for that service's leaf). It has no side
// effects.
func NewLinked(newManager func(service string) *Manager) *Linked {
	return &Linked{newManager: newManager, managers: map[string]*groupManager{}}
}

// Set makes services the linked services: it creates and starts a manager
// for each service without one (once Run runs) and stops those of the
// services not listed. It returns the managers by service; the map is the
// caller's.
func (l *Linked) Set(services []string) map[string]*Manager {
	l.mu.Lock()
	defer l.mu.Unlock()
	wanted := make(map[string]bool, len(services))
	for _, svc := range services {
		wanted[svc] = true
		if l.managers[svc] != nil {
			continue
		}
		lm := &groupManager{Manager: l.newManager(svc)}
		lm.Want()
		if l.roots != nil {
			lm.SetRoots(l.roots)
		}
		l.managers[svc] = lm
		l.run.start(lm)
	}
	out := make(map[string]*Manager, len(wanted))
	for svc, lm := range l.managers {
		if !wanted[svc] {
			lm.halt()
			delete(l.managers, svc)
			continue
		}
		out[svc] = lm.Manager
	}
	return out
}

// SetRoots records the trust bundle (first root first) in every manager,
// and in those Set creates later.
func (l *Linked) SetRoots(roots []*x509.Certificate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roots = roots
	for _, lm := range l.managers {
		lm.SetRoots(roots)
	}
}

// Get returns the manager of service, or nil.
func (l *Linked) Get(service string) *Manager {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lm := l.managers[service]; lm != nil {
		return lm.Manager
	}
	return nil
}

// Status returns each manager's status by service.
func (l *Linked) Status() map[string]Status {
	l.mu.Lock()
	managers := maps.Clone(l.managers)
	l.mu.Unlock()
	out := make(map[string]Status, len(managers))
	for svc, lm := range managers {
		out[svc] = lm.Status()
	}
	return out
}

// Run runs the managers, those Set created before and after it started,
// until ctx is cancelled, then waits for them to return. Call it once. It
// always returns nil.
func (l *Linked) Run(ctx context.Context) error {
	l.run.run(ctx, &l.mu, func() []*groupManager { return slices.Collect(maps.Values(l.managers)) })
	return nil
}
