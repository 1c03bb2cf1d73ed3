package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The gateway metrics count what a gateway passes to each target: a
// service, its datacenter (when it is in this mesh) and the cluster peer
// it comes from or goes to, as the control plane states them on the
// target's clusters (config.Target). Their labels come from the
// configuration only; the code label is bounded.

type targetKey struct{ service, datacenter, peer string }

// Target is the gateway metrics of one target, for each kind of gateway
// whose traffic reaches it. Clusters hold it while their configuration
// names the target (cluster.Options.Target); once the last one releases
// it, its series are deleted, and a handle still held counts into
// series no longer exported. A nil *Target records nothing.
type Target struct {
	m    *Metrics
	key  targetKey
	refs int // guarded by m.mu

	// kinds are the handles of the gateway kinds seen so far, copied on
	// write: a proxy is one kind of gateway, so a scan beats a map.
	kinds atomic.Pointer[[]*Gateway]
	mu    sync.Mutex // serializes growth of kinds and of their codes, and gone
	gone  bool
}

// Gateway is the metrics of one target's traffic through one kind of
// gateway. A nil *Gateway records nothing.
type Gateway struct {
	t                           *Target
	kind                        string
	connections, received, sent prometheus.Counter

	// codes holds a counter per status seen so far, copied on write
	// under t.mu.
	codes atomic.Pointer[[]codeCounter]
}

type codeCounter struct {
	code    int
	counter prometheus.Counter
}

// Target returns the handle of a target, the same one for the same labels
// while it is held, and holds it once more: call Release when done. It
// takes a lock; call it when a configuration is applied.
func (m *Metrics) Target(service, datacenter, peer string) *Target {
	k := targetKey{service, datacenter, peer}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.targets[k]
	if t == nil {
		t = &Target{m: m, key: k}
		t.kinds.Store(&[]*Gateway{})
		m.targets[k] = t
	}
	t.refs++
	return t
}

// Release lets go of t; the last release deletes the target's series.
func (t *Target) Release() {
	if t == nil {
		return
	}
	m := t.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.refs--; t.refs > 0 {
		return
	}
	delete(m.targets, t.key)
	t.mu.Lock()
	t.gone = true
	t.mu.Unlock()
	labels := prometheus.Labels{"service": t.key.service, "datacenter": t.key.datacenter, "peer": t.key.peer}
	m.gwConnections.DeletePartialMatch(labels)
	m.gwBytes.DeletePartialMatch(labels)
	m.gwRequests.DeletePartialMatch(labels)
}

// Gateway returns the handle of the target's traffic through a gateway of
// kind (Consul's name of it: "mesh-gateway", "terminating-gateway",
// "ingress-gateway", "api-gateway"). Once kind has been seen it takes no
// lock and does not allocate. It returns nil once t is released.
func (t *Target) Gateway(kind string) *Gateway {
	if t == nil {
		return nil
	}
	for _, g := range *t.kinds.Load() {
		if g.kind == kind {
			return g
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone {
		return nil
	}
	old := *t.kinds.Load()
	for _, g := range old {
		if g.kind == kind {
			return g
		}
	}
	k := t.key
	g := &Gateway{t: t, kind: kind,
		connections: t.m.gwConnections.WithLabelValues(kind, k.service, k.datacenter, k.peer),
		received:    t.m.gwBytes.WithLabelValues(kind, k.service, k.datacenter, k.peer, "received"),
		sent:        t.m.gwBytes.WithLabelValues(kind, k.service, k.datacenter, k.peer, "sent"),
	}
	g.codes.Store(&[]codeCounter{})
	grown := append(old[:len(old):len(old)], g)
	t.kinds.Store(&grown)
	return g
}

// Connected counts a connection the gateway passed to a host of the
// target.
func (g *Gateway) Connected() {
	if g != nil {
		g.connections.Inc()
	}
}

// Transferred adds bytes passed: received from the downstream peer (and
// sent on to the target), sent back to it.
func (g *Gateway) Transferred(received, sent int64) {
	if g == nil {
		return
	}
	if received > 0 {
		g.received.Add(float64(received))
	}
	if sent > 0 {
		g.sent.Add(float64(sent))
	}
}

// Request counts a request an L7 gateway passed to the target, answered
// with status code (0: none reached the client; outside 100-599: "other"),
// and its body bytes as Transferred. It does not allocate once the code
// has been seen.
func (g *Gateway) Request(code int, received, sent int64) {
	if g == nil {
		return
	}
	if code != 0 && (code < 100 || code > 599) {
		code = -1
	}
	if c := g.codeCounter(code); c != nil {
		c.Inc()
	}
	g.Transferred(received, sent)
}

// codeCounter returns the counter of code; nil once the target is
// released.
func (g *Gateway) codeCounter(code int) prometheus.Counter {
	for _, c := range *g.codes.Load() {
		if c.code == code {
			return c.counter
		}
	}
	g.t.mu.Lock()
	defer g.t.mu.Unlock()
	if g.t.gone {
		return nil
	}
	old := *g.codes.Load()
	for _, c := range old {
		if c.code == code {
			return c.counter
		}
	}
	label := Other
	if code >= 0 {
		label = strconv.Itoa(code)
	}
	k := g.t.key
	grown := append(old[:len(old):len(old)], codeCounter{code, g.t.m.gwRequests.WithLabelValues(g.kind, k.service, k.datacenter, k.peer, label)})
	g.codes.Store(&grown)
	return grown[len(grown)-1].counter
}
