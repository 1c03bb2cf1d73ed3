package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/xds"
)

// initialFetchTimeout bounds how long readiness waits for the routes and
// endpoints the first configuration names, as Envoy's initial_fetch_timeout.
const initialFetchTimeout = 15 * time.Second

// readiness latches once the proxy first serves a complete configuration:
// listeners and clusters applied, the route configurations, load
// assignments and trust bundles they reference received (so that a ready
// proxy does not refuse traffic for want of endpoints still in flight),
// and the leaf certificates they present obtained (the proxy's own, and
// linked services'). The zero value is ready for use.
type readiness struct {
	ready    atomic.Bool
	draining atomic.Bool
	warming  atomic.Pointer[warming] // set once listeners and clusters are applied

	chOnce  sync.Once
	latched chan struct{} // closed when ready is first set; see done
}

// done returns a channel closed once the latch is set.
func (r *readiness) done() <-chan struct{} { return r.latchedCh() }

func (r *readiness) latchedCh() chan struct{} {
	r.chOnce.Do(func() { r.latched = make(chan struct{}) })
	return r.latched
}

// latch sets ready and reports whether this call set it.
func (r *readiness) latch() bool {
	if r.ready.Swap(true) {
		return false
	}
	close(r.latchedCh())
	return true
}

type warming struct {
	since   time.Time
	missing []string
	leaves  leafNeeds
}

// leafNeeds are the leaf certificates a configuration presents.
type leafNeeds struct {
	own     bool     // weft-leaf
	linked  []string // the services of weft-leaf/<service>
	ingress bool     // weft-ingress-leaf
}

// leafWait says which leaf of needs is missing and why; nil when none is.
type leafWait func(needs leafNeeds) error

// observe records an applied configuration; leaves says whether the leaf
// certificates it presents are there. It reports whether the proxy just
// became ready. Called from the apply goroutine only.
func (r *readiness) observe(s xds.State, rt *config.Runtime, now time.Time, leaves leafWait) bool {
	if r.ready.Load() || !s.Listeners.Received || !s.Clusters.Received {
		return false
	}
	missing := missingReferences(s, rt.Subscriptions)
	needs := leafNeeds{own: rt.UsesLeaf, linked: rt.LinkedLeaves, ingress: rt.IngressLeaf != nil}
	if len(missing) == 0 && leaves(needs) == nil {
		return r.latch()
	}
	since := now
	if w := r.warming.Load(); w != nil {
		since = w.since
	}
	r.warming.Store(&warming{since: since, missing: missing, leaves: needs})
	return false
}

// check returns nil when ready, else the reason; notApplied explains why
// no configuration has been applied yet and leaves which leaf certificate
// is missing. Missing references stop waiting after initialFetchTimeout;
// a missing leaf does not: without it no mTLS handshake presenting it can
// succeed.
func (r *readiness) check(now time.Time, notApplied func() error, leaves leafWait) error {
	w := r.warming.Load()
	switch {
	case r.draining.Load():
		return errors.New("draining: shutting down")
	case r.ready.Load():
		return nil
	case w == nil:
		return notApplied()
	case len(w.missing) > 0 && now.Sub(w.since) < initialFetchTimeout:
		return fmt.Errorf("waiting for the first xDS %s", strings.Join(w.missing, ", "))
	}
	if err := leaves(w.leaves); err != nil {
		return err
	}
	r.latch()
	return nil
}

// missingReferences lists the subscribed routes, endpoints and secrets not
// received.
func missingReferences(s xds.State, subs xds.Subscriptions) []string {
	var missing []string
	for _, name := range subs.Routes {
		if s.Routes.Items[name] == nil {
			missing = append(missing, fmt.Sprintf("route configuration %q", name))
		}
	}
	for _, name := range subs.Endpoints {
		if s.Endpoints.Items[name] == nil {
			missing = append(missing, fmt.Sprintf("cluster load assignment %q", name))
		}
	}
	for _, name := range subs.Secrets {
		if s.Secrets.Items[name] == nil {
			missing = append(missing, fmt.Sprintf("secret %q", name))
		}
	}
	slices.Sort(missing)
	return missing
}
