package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/xds"
)

// initialFetchTimeout bounds how long readiness waits for the routes and
// endpoints the first configuration names, as Envoy's initial_fetch_timeout.
const initialFetchTimeout = 15 * time.Second

// readiness latches once the proxy first serves a complete configuration:
// listeners and clusters applied, and the route configurations and load
// assignments they reference received (so that a ready proxy does not
// refuse traffic for want of endpoints still in flight).
type readiness struct {
	ready    atomic.Bool
	draining atomic.Bool
	warming  atomic.Pointer[warming] // set once listeners and clusters are applied
}

type warming struct {
	since   time.Time
	missing []string
}

// observe records an applied configuration. It reports whether the proxy
// just became ready. Called from the apply goroutine only.
func (r *readiness) observe(s xds.State, rt *config.Runtime, now time.Time) bool {
	if r.ready.Load() || !s.Listeners.Received || !s.Clusters.Received {
		return false
	}
	missing := missingReferences(s, rt.Subscriptions)
	if len(missing) == 0 {
		return !r.ready.Swap(true)
	}
	since := now
	if w := r.warming.Load(); w != nil {
		since = w.since
	}
	r.warming.Store(&warming{since: since, missing: missing})
	return false
}

// check returns nil when ready, else the reason; notApplied explains why
// no configuration has been applied yet.
func (r *readiness) check(now time.Time, notApplied func() error) error {
	switch w := r.warming.Load(); {
	case r.draining.Load():
		return errors.New("draining: shutting down")
	case r.ready.Load():
		return nil
	case w == nil:
		return notApplied()
	case now.Sub(w.since) >= initialFetchTimeout:
		r.ready.Store(true)
		return nil
	default:
		return fmt.Errorf("waiting for the first xDS %s", strings.Join(w.missing, ", "))
	}
}

// missingReferences lists the subscribed routes and endpoints not received.
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
	slices.Sort(missing)
	return missing
}
