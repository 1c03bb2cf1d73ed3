// Package cluster holds the data plane's upstream clusters: each an
// immutable set of hosts behind a lock-free picker of its load-balancing
// policy, its circuit breakers (atomic counters against the cluster's
// thresholds), outlier detection (proto/outlier: a breaker per host;
// ejected hosts leave the picker), and pooled HTTP/1.1 and HTTP/2
// transports that survive configuration updates while the cluster exists.
// Clusters with a TLS context dial mutual TLS, for TCP and HTTP alike.
// When too few hosts are available, a cluster balances over unhealthy
// hosts too (panic mode, Envoy's healthy_panic_threshold; selection.go).
//
// Every change — endpoints, health, an ejection, a readmission — builds
// a new picker and publishes it with one atomic store; requests never
// lock.
package cluster

import (
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/balancer/leastrequest"
	"github.com/weft-mesh/weft/proxy/balancer/maglev"
	"github.com/weft-mesh/weft/proxy/balancer/random"
	"github.com/weft-mesh/weft/proxy/balancer/ringhash"
	"github.com/weft-mesh/weft/proxy/balancer/roundrobin"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

// Errors of Pick and of the limits, mapped to x-weft-error reasons by
// the router.
var (
	// ErrNoHealthyUpstream: no host is HEALTHY or UNKNOWN.
	ErrNoHealthyUpstream = errors.New("no healthy upstream")
	// ErrCircuitOpen: healthy hosts exist but outlier detection ejected
	// every one.
	ErrCircuitOpen = errors.New("every healthy upstream host is ejected")
	// ErrOverflow: a circuit breaker threshold is reached.
	ErrOverflow = errors.New("circuit breaker threshold reached")
)

// Cluster is one upstream cluster. Its methods are safe for concurrent
// use; the request path does not lock.
type Cluster struct {
	name  string
	creds mtls.Credentials
	clock outlier.Clock
	// onBreaker observes breaker changes; nil when nobody does.
	onBreaker func(addr string, to gobreaker.State)
	// onHostRemoved is told hosts that leave; nil when nobody is.
	onHostRemoved func(addr string)
	// onPanic is told when the cluster enters or leaves panic mode; nil
	// when nobody is.
	onPanic func(panic bool)
	// target acquires the metrics handle of a target; nil when nobody
	// counts.
	target func(config.Target) *metrics.Target
	// rawIO gives dialled connections raw reads and writes.
	rawIO bool
	// standardHTTP2 sends HTTP/2 with net/http's client.
	standardHTTP2 bool
	state         atomic.Pointer[state]
	mu            sync.Mutex // serializes updates and picker rebuilds
	closed        bool       // guarded by mu

	// Circuit breaker counters; they outlive configuration updates.
	requests, pending, retries atomic.Int64
}

type state struct {
	cfg     *config.Cluster
	hosts   []entry // every endpoint, in configuration order
	build   balancer.Builder
	picker  balancer.Picker
	healthy int  // hosts HEALTHY or UNKNOWN
	panic   bool // the picker balances over unhealthy hosts too
	health  int  // Envoy's health of the priorities (selection.health)
	picked  int  // the hosts the picker balances over
	// children are an aggregate cluster's (cfg.Aggregate) in priority
	// order, resolved by Manager.Update; nil for other clusters.
	children []*Cluster
	detector *outlier.Detector
	tls      *tls.Config // nil without a TLS context
	upstream *upstream
	limits   config.Limits
	slots    chan struct{} // one token per open connection (max_connections)
	// targetMetrics is the handle of cfg.Target's gateway metrics; nil
	// without a target or without Options.Target.
	targetMetrics *metrics.Target
}

// limitsOf returns cfg's limits; a cluster built without any (zero
// Limits, never the output of config.Compile) gets Envoy's defaults.
func limitsOf(cfg *config.Cluster) config.Limits {
	if cfg.Limits == (config.Limits{}) {
		return config.DefaultLimits()
	}
	return cfg.Limits
}

// entry is an endpoint's configuration and its host.
type entry struct {
	ep   config.Endpoint
	host *Host
}

func newCluster(cfg *config.Cluster, opts Options) *Cluster {
	c := &Cluster{name: cfg.Name, creds: opts.Credentials, clock: opts.Clock, rawIO: !opts.StandardSocketIO, standardHTTP2: opts.StandardHTTP2Client}
	if f := opts.OnBreaker; f != nil {
		c.onBreaker = func(addr string, to gobreaker.State) { f(cfg.Name, addr, to) }
	}
	if f := opts.OnHostRemoved; f != nil {
		c.onHostRemoved = func(addr string) { f(cfg.Name, addr) }
	}
	if f := opts.OnPanic; f != nil {
		c.onPanic = func(panic bool) { f(cfg.Name, panic) }
	}
	c.target = opts.Target
	st := &state{cfg: cfg, build: builder(cfg.LB), limits: limitsOf(cfg), targetMetrics: c.acquireTarget(cfg.Target)}
	st.slots = make(chan struct{}, st.limits.MaxConnections)
	st.tls = c.clientTLS(cfg)
	st.upstream = newUpstream(c, cfg, st.tls)
	st.detector = c.newDetector(cfg)
	st.hosts = c.hostsFor(cfg.Endpoints, nil, st.detector)
	st.pick()
	c.state.Store(st)
	c.panicChanged(false, st.panic)
	return c
}

func (c *Cluster) clientTLS(cfg *config.Cluster) *tls.Config {
	if cfg.TLS == nil {
		return nil
	}
	return c.creds.ClientConfig(cfg.TLS)
}

func (c *Cluster) newDetector(cfg *config.Cluster) *outlier.Detector {
	if cfg.Outlier == nil {
		return nil
	}
	return outlier.New(*cfg.Outlier, outlier.Options{Name: cfg.Name, OnChange: c.rebuild, OnBreaker: c.onBreaker, Clock: c.clock})
}

// builder returns the picker builder of a load-balancing policy.
func builder(lb config.LB) balancer.Builder {
	switch lb.Policy {
	case config.LeastRequest:
		return leastrequest.Builder(lb.ChoiceCount)
	case config.Random:
		return random.New
	case config.RingHash:
		return ringhash.Builder(lb.MinRingSize, lb.MaxRingSize)
	case config.Maglev:
		return maglev.Builder(lb.TableSize)
	}
	return roundrobin.New
}

// Name returns the cluster name.
func (c *Cluster) Name() string { return c.name }

// NeedsHash reports whether the cluster's policy picks by request hash;
// for an aggregate cluster, whether a child's does.
func (c *Cluster) NeedsHash() bool {
	st := c.state.Load()
	for _, child := range st.children {
		if child.NeedsHash() {
			return true
		}
	}
	return st.cfg.LB.HashBased()
}

// ConnectTimeout bounds dials to the cluster's endpoints.
func (c *Cluster) ConnectTimeout() time.Duration { return c.state.Load().cfg.ConnectTimeout }

// update publishes cfg, keeping hosts (their in-flight counts and
// breakers) that stay, the picker when nothing it depends on changed,
// and the transports when their settings did not change.
func (c *Cluster) update(cfg *config.Cluster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.state.Load()
	next := *old
	next.cfg = cfg
	if !old.cfg.TLS.Equal(cfg.TLS) {
		next.tls = c.clientTLS(cfg)
	}
	if !old.upstream.sameSettings(cfg) || next.tls != old.tls {
		next.upstream = newUpstream(c, cfg, next.tls)
	}
	next.limits = limitsOf(cfg)
	if old.cfg.Target != cfg.Target {
		next.targetMetrics = c.acquireTarget(cfg.Target)
		defer old.targetMetrics.Release()
	}
	if old.limits.MaxConnections != next.limits.MaxConnections {
		next.slots = make(chan struct{}, next.limits.MaxConnections)
	}
	rebuild := old.cfg.LB != cfg.LB || !endpointsEqual(old.cfg.Endpoints, cfg.Endpoints)
	if !outlierEqual(old.cfg.Outlier, cfg.Outlier) {
		next.detector = c.newDetector(cfg)
		rebuild = true
	}
	if rebuild {
		next.build = builder(cfg.LB)
		next.hosts = c.hostsFor(cfg.Endpoints, old, next.detector)
		next.pick()
	}
	c.state.Store(&next)
	c.panicChanged(old.panic, next.panic)
	if next.detector != old.detector {
		c.retire(old.hosts, old.detector)
	} else if rebuild {
		c.retireRemoved(old.hosts, next.hosts)
	}
	if next.upstream != old.upstream {
		old.upstream.closeIdle(true)
	}
}

// rebuild publishes a new picker over the current hosts' availability.
// Outlier detection calls it after every ejection and readmission.
func (c *Cluster) rebuild() {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.state.Load()
	next := *old
	next.pick()
	c.state.Store(&next)
	c.panicChanged(old.panic, next.panic)
}

// panicChanged tells onPanic that panic mode went from was to is.
func (c *Cluster) panicChanged(was, is bool) {
	if was != is && c.onPanic != nil {
		c.onPanic(is)
	}
}

func (c *Cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state.Load()
	c.retire(st.hosts, st.detector)
	st.upstream.closeIdle(true)
	if !c.closed {
		c.closed = true
		st.targetMetrics.Release()
	}
}

// pick builds the picker over the hosts' current health and ejections
// (see selectHosts).
func (st *state) pick() {
	sel := selectHosts(st.hosts, st.cfg.LB.PanicThreshold)
	st.healthy, st.panic, st.health, st.picked = sel.healthy, sel.panic, sel.health, len(sel.endpoints)
	if len(sel.endpoints) == 0 {
		st.picker = balancer.Empty{}
		return
	}
	st.picker = st.build(sel.endpoints)
}

func endpointsEqual(a, b []config.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func outlierEqual(a, b *outlier.Settings) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
