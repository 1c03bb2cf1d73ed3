// Package cluster holds the data plane's upstream clusters: each an
// immutable endpoint set behind a lock-free picker, plus a pooled HTTP
// transport that survives configuration updates while the cluster exists.
package cluster

import (
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/balancer/roundrobin"
	"github.com/weft-mesh/weft/proxy/config"
)

// Cluster is one upstream cluster. Its methods are safe for concurrent use
// and do not lock: every update publishes a new immutable state.
type Cluster struct {
	name  string
	state atomic.Pointer[state]
}

type state struct {
	cfg       *config.Cluster
	picker    balancer.Picker
	transport *lazyTransport
}

func newCluster(cfg *config.Cluster) *Cluster {
	c := &Cluster{name: cfg.Name}
	c.state.Store(&state{cfg: cfg, picker: newPicker(cfg.Endpoints), transport: newLazyTransport(cfg)})
	return c
}

// Name returns the cluster name.
func (c *Cluster) Name() string { return c.name }

// Pick chooses an endpoint, or fails with balancer.ErrNoEndpoint.
func (c *Cluster) Pick() (balancer.PickResult, error) {
	return c.state.Load().picker.Pick(balancer.PickInfo{})
}

// ConnectTimeout bounds dials to the cluster's endpoints.
func (c *Cluster) ConnectTimeout() time.Duration { return c.state.Load().cfg.ConnectTimeout }

// Transport returns the cluster's pooled keep-alive HTTP transport, built
// on first use. It stays the same across updates unless the connect
// timeout or upstream protocol changes.
func (c *Cluster) Transport() *http.Transport { return c.state.Load().transport.get() }

// update publishes cfg, keeping the picker when the endpoints did not
// change and the transport when its settings did not.
func (c *Cluster) update(cfg *config.Cluster) {
	old := c.state.Load()
	next := &state{cfg: cfg, picker: old.picker, transport: old.transport}
	if !slices.Equal(old.cfg.Endpoints, cfg.Endpoints) {
		next.picker = newPicker(cfg.Endpoints)
	}
	if !old.transport.sameSettings(cfg) {
		next.transport = newLazyTransport(cfg)
	}
	c.state.Store(next)
	if next.transport != old.transport {
		old.transport.closeIdle()
	}
}

func (c *Cluster) close() { c.state.Load().transport.closeIdle() }

// newPicker builds a round-robin picker over the healthy endpoints of the
// highest priority (lowest number) that has any.
func newPicker(endpoints []config.Endpoint) balancer.Picker {
	best, found := uint32(0), false
	for _, e := range endpoints {
		if e.Healthy && (!found || e.Priority < best) {
			best, found = e.Priority, true
		}
	}
	var eps []balancer.Endpoint
	for _, e := range endpoints {
		if e.Healthy && e.Priority == best {
			eps = append(eps, balancer.Endpoint{Address: e.Address, Weight: e.Weight})
		}
	}
	return roundrobin.New(eps)
}

// lazyTransport builds its http.Transport on first use, so that clusters
// used only for TCP cost nothing.
type lazyTransport struct {
	connectTimeout time.Duration
	http2          bool
	once           sync.Once
	t              atomic.Pointer[http.Transport]
}

func newLazyTransport(cfg *config.Cluster) *lazyTransport {
	return &lazyTransport{connectTimeout: cfg.ConnectTimeout, http2: cfg.HTTP2}
}

func (l *lazyTransport) sameSettings(cfg *config.Cluster) bool {
	return l.connectTimeout == cfg.ConnectTimeout && l.http2 == cfg.HTTP2
}

func (l *lazyTransport) get() *http.Transport {
	l.once.Do(func() { l.t.Store(newTransport(l.connectTimeout, l.http2)) })
	return l.t.Load()
}

func (l *lazyTransport) closeIdle() {
	if t := l.t.Load(); t != nil {
		t.CloseIdleConnections()
	}
}

// newTransport returns a keep-alive transport for proxying: no
// environment proxy, no transparent compression, a deep idle pool.
func newTransport(connectTimeout time.Duration, http2 bool) *http.Transport {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	if http2 {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		Protocols:             protocols,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
