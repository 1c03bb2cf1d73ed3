package cluster

import (
	"sync/atomic"

	"github.com/sony/gobreaker/v2"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// Options configure a Manager.
type Options struct {
	// Credentials serve the handshakes of clusters with a TLS context.
	Credentials mtls.Credentials
	// Clock times outlier ejections (default: the system clock).
	Clock outlier.Clock
	// OnBreaker, when set, is told every breaker state change of a host
	// of a cluster with outlier detection (see outlier.Options.OnBreaker).
	OnBreaker func(cluster, addr string, to gobreaker.State)
	// OnHostRemoved, when set, is told every host that leaves a cluster,
	// after its breaker stopped: its endpoint was removed, its cluster
	// was, or the cluster's outlier settings changed, which gives every
	// endpoint a new host (the same address may then be in the cluster
	// again, with a closed breaker). It is called from Update's
	// goroutine.
	OnHostRemoved func(cluster, addr string)
	// OnPanic, when set, is told every time a cluster enters (true) or
	// leaves (false) panic mode, from the goroutine that rebuilt its
	// picker (Update's, or outlier detection's), with the cluster's update
	// lock held: it must be quick and must not call into the cluster.
	OnPanic func(cluster string, panic bool)
	// OnClusterRemoved, when set, is told every cluster Update removes,
	// after its hosts were.
	OnClusterRemoved func(cluster string)
}

// Manager holds the current set of clusters.
//
// Get is safe for concurrent use and lock-free. Update and Close must be
// called from one goroutine at a time (the proxy's apply loop).
type Manager struct {
	opts     Options
	clusters atomic.Pointer[map[string]*Cluster]
}

// NewManager returns an empty Manager.
func NewManager(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = outlier.SystemClock{}
	}
	m := &Manager{opts: opts}
	m.clusters.Store(&map[string]*Cluster{})
	return m
}

// Get returns the named cluster, or nil when it does not exist (yet).
func (m *Manager) Get(name string) *Cluster { return (*m.clusters.Load())[name] }

// Update makes cfgs the current clusters. Existing clusters are updated in
// place (keeping their connection pools, counters and breakers); one given
// the *config.Cluster it already has is left as it is (config.Recompile
// keeps the pointer of a cluster whose resources did not change). Removed
// clusters finish their in-flight requests and drop their idle
// connections.
func (m *Manager) Update(cfgs map[string]*config.Cluster) {
	old := *m.clusters.Load()
	for name, cfg := range cfgs {
		if c, ok := old[name]; ok && c.state.Load().cfg != cfg {
			c.update(cfg)
		}
	}
	if sameNames(old, cfgs) {
		return
	}
	next := make(map[string]*Cluster, len(cfgs))
	for name, cfg := range cfgs {
		if c, ok := old[name]; ok {
			next[name] = c
		} else {
			next[name] = newCluster(cfg, m.opts)
		}
	}
	m.clusters.Store(&next)
	for name, c := range old {
		if _, kept := next[name]; !kept {
			c.close()
			if f := m.opts.OnClusterRemoved; f != nil {
				f(name)
			}
		}
	}
}

// sameNames reports whether cfgs names exactly the clusters of have.
func sameNames(have map[string]*Cluster, cfgs map[string]*config.Cluster) bool {
	if len(have) != len(cfgs) {
		return false
	}
	for name := range cfgs {
		if _, ok := have[name]; !ok {
			return false
		}
	}
	return true
}

// Close drops every cluster's idle connections and stops their timers.
func (m *Manager) Close() {
	for _, c := range *m.clusters.Load() {
		c.close()
	}
}
