package cluster

import (
	"sync/atomic"

	"github.com/sony/gobreaker/v2"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
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
	// Target, when set, gives a cluster whose configuration names a
	// target (config.Cluster.Target, never the zero one) the handle of
	// that target's gateway metrics, which Cluster.TargetMetrics returns;
	// the cluster releases it (metrics.Target.Release) when its target
	// changes or it is removed. It is called from Update's goroutine.
	Target func(config.Target) *metrics.Target
	// StandardSocketIO gives upstream connections net.Conn's reads and
	// writes; by default they are raw (see package proxy/internal/rawio).
	StandardSocketIO bool
	// StandardHTTP2Client sends HTTP/2 requests upstream with net/http's
	// client; by default a cluster has its own (http2.go).
	StandardHTTP2Client bool
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
// connections; so does a cluster that becomes an aggregate cluster or
// stops being one, which is replaced. Aggregate clusters are given their
// children, by name among cfgs, before the new set is published.
func (m *Manager) Update(cfgs map[string]*config.Cluster) {
	old := *m.clusters.Load()
	resolve := false
	for name, cfg := range cfgs {
		if c, ok := old[name]; ok && c.state.Load().cfg != cfg && sameKind(c, cfg) {
			c.update(cfg)
			resolve = resolve || cfg.Aggregate != nil
		}
	}
	if sameClusters(old, cfgs) {
		if resolve {
			resolveAggregates(old)
		}
		return
	}
	next := make(map[string]*Cluster, len(cfgs))
	for name, cfg := range cfgs {
		if c, ok := old[name]; ok && sameKind(c, cfg) {
			next[name] = c
		} else {
			next[name] = newCluster(cfg, m.opts)
		}
	}
	resolveAggregates(next)
	m.clusters.Store(&next)
	for name, c := range old {
		successor, kept := next[name]
		if successor == c {
			continue
		}
		c.close()
		// One replaced by an aggregate leaves its series; an aggregate
		// has none, and its successor's must stay.
		if f := m.opts.OnClusterRemoved; f != nil && (!kept || successor.IsAggregate()) {
			f(name)
		}
	}
}

// sameKind reports whether c and cfg are both aggregate clusters or
// neither is.
func sameKind(c *Cluster, cfg *config.Cluster) bool { return c.IsAggregate() == (cfg.Aggregate != nil) }

// sameClusters reports whether cfgs names exactly the clusters of have,
// each of the same kind.
func sameClusters(have map[string]*Cluster, cfgs map[string]*config.Cluster) bool {
	if len(have) != len(cfgs) {
		return false
	}
	for name, cfg := range cfgs {
		if c, ok := have[name]; !ok || !sameKind(c, cfg) {
			return false
		}
	}
	return true
}

// resolveAggregates gives each aggregate cluster of clusters its
// children, in order; a name that is not among clusters, or that is an
// aggregate cluster itself, is left out (config.Compile rejects both).
func resolveAggregates(clusters map[string]*Cluster) {
	for _, c := range clusters {
		names := c.state.Load().cfg.Aggregate
		if names == nil {
			continue
		}
		children := make([]*Cluster, 0, len(names))
		for _, name := range names {
			if child := clusters[name]; child != nil && !child.IsAggregate() {
				children = append(children, child)
			}
		}
		c.setChildren(children)
	}
}

// Close drops every cluster's idle connections and stops their timers.
func (m *Manager) Close() {
	for _, c := range *m.clusters.Load() {
		c.close()
	}
}
