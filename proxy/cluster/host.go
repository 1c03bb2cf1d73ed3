package cluster

import (
	"sync/atomic"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// Host is one upstream endpoint of a cluster. It keeps its in-flight
// request count and its breaker across configuration updates.
type Host struct {
	addr     string
	instance string
	active   atomic.Int64
	outlier  *outlier.Host // nil without outlier detection
}

// Address returns "host:port".
func (h *Host) Address() string { return h.addr }

// InstanceID returns the Consul instance behind the host (EDS metadata),
// "" when the control plane did not name it.
func (h *Host) InstanceID() string { return h.instance }

// hostKey identifies a host across updates: its address and instance, so
// that another instance at the same address starts afresh.
func hostKey(ep config.Endpoint) string { return ep.Address + "\x00" + ep.InstanceID }

// hostsFor pairs endpoints with hosts, reusing old's hosts by address and
// instance when the detector is the same.
func (c *Cluster) hostsFor(eps []config.Endpoint, old *state, d *outlier.Detector) []entry {
	reuse := map[string]*Host{}
	if old != nil && old.detector == d {
		for _, e := range old.hosts {
			reuse[hostKey(e.ep)] = e.host
		}
	}
	out := make([]entry, 0, len(eps))
	for _, ep := range eps {
		k := hostKey(ep)
		h, ok := reuse[k]
		if !ok {
			h = &Host{addr: ep.Address, instance: ep.InstanceID}
			if d != nil {
				h.outlier = d.NewHost(ep.Address)
			}
			reuse[k] = h // an endpoint listed twice shares its host
		}
		out = append(out, entry{ep: ep, host: h})
	}
	return out
}

// retire removes every host of a detector that is replaced.
func (c *Cluster) retire(hosts []entry, d *outlier.Detector) {
	for _, e := range hosts {
		c.removeHost(e.host)
	}
	if d != nil {
		d.Close()
	}
}

// retireRemoved removes the hosts of old that next no longer has.
func (c *Cluster) retireRemoved(old, next []entry) {
	kept := make(map[*Host]bool, len(next))
	for _, e := range next {
		kept[e.host] = true
	}
	for _, e := range old {
		if !kept[e.host] {
			c.removeHost(e.host)
		}
	}
}

// removeHost takes h out of outlier detection and tells onHostRemoved.
func (c *Cluster) removeHost(h *Host) {
	h.outlier.Remove()
	if c.onHostRemoved != nil {
		c.onHostRemoved(h.addr)
	}
}

// Attempt is one request or connection to a host, from Pick to Release.
type Attempt struct {
	Host *Host
	// Cluster is the cluster of Host: the one picked from, or the child
	// an aggregate cluster chose. Its settings apply to the attempt: TLS
	// (Scheme, Dial, Transport), connect timeout, limits, retry budget.
	Cluster *Cluster
	ticket  outlier.Ticket
}

// Report tells outlier detection how the attempt went; call it once, as
// soon as that is known (response headers, or the failure). It reports
// whether this result opened the host's breaker: outlier detection
// ejected the host.
func (a Attempt) Report(r outlier.Result) (ejected bool) { return a.Host.outlier.Report(a.ticket, r) }

// Release ends the attempt (its in-flight count); call it once, when the
// exchange with the host is over.
func (a Attempt) Release() { a.Host.active.Add(-1) }

// maxPickTries bounds re-picks for a host that just left service or that
// a retry should avoid.
const maxPickTries = 4

// Pick chooses a host for an attempt, preferring hosts not in avoid (the
// hosts a request already tried) for up to avoidTries re-picks. For an
// aggregate cluster it chooses a child first (aggregate.go). It fails
// with ErrNoHealthyUpstream or ErrCircuitOpen. The caller must Release
// the attempt.
func (c *Cluster) Pick(info balancer.PickInfo, avoid []*Host, avoidTries int) (Attempt, error) {
	if st := c.state.Load(); st.cfg.Aggregate != nil {
		return pickChild(st, info, avoid, avoidTries)
	}
	a, avoided, err := c.pick(info, avoid, avoidTries, false)
	if err == nil || avoided == nil {
		return a, err
	}
	if a, ok := c.admit(avoided); ok {
		return a, nil
	}
	return Attempt{}, ErrCircuitOpen
}

// pick is Pick without its last resort: when every pick was a host to
// avoid, it fails, returning the host it avoided last. Hosts of avoid
// are re-picked avoidTries times, and with strict never taken.
func (c *Cluster) pick(info balancer.PickInfo, avoid []*Host, avoidTries int, strict bool) (Attempt, *Host, error) {
	var avoided *Host
	for try := 0; try < maxPickTries+avoidTries; try++ {
		st := c.state.Load()
		res, err := st.picker.Pick(info)
		if err != nil {
			return Attempt{}, nil, st.noHost()
		}
		h := res.Endpoint.Ref.(*Host)
		info.Attempt++
		if (avoidTries > 0 || strict) && contains(avoid, h) {
			avoidTries = max(avoidTries-1, 0)
			avoided = h
			continue
		}
		if a, ok := c.admit(h); ok {
			return a, nil, nil
		}
	}
	return Attempt{}, avoided, ErrCircuitOpen
}

// noHost is the error of a picker without hosts: ErrCircuitOpen when
// outlier detection ejected the healthy ones.
func (st *state) noHost() error {
	if st.healthy > 0 {
		return ErrCircuitOpen
	}
	return ErrNoHealthyUpstream
}

// Ejected returns the number of the cluster's hosts that outlier
// detection holds out of service now (ejected or awaiting their probe);
// for an aggregate cluster, its children's. It reads atomics only.
func (c *Cluster) Ejected() int {
	st := c.state.Load()
	if d := st.detector; d != nil {
		return d.Ejected()
	}
	n := 0
	for _, child := range st.children {
		n += child.Ejected()
	}
	return n
}

func (c *Cluster) admit(h *Host) (Attempt, bool) {
	t, ok := h.outlier.Admit()
	if !ok {
		return Attempt{}, false
	}
	h.active.Add(1)
	return Attempt{Host: h, Cluster: c, ticket: t}, true
}

func contains(hosts []*Host, h *Host) bool {
	for _, x := range hosts {
		if x == h {
			return true
		}
	}
	return false
}
