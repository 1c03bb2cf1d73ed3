package discovery

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// serviceHold keeps a service's instances that Consul stopped listing
// until a deadline, so that a Consul that lost them for a while (it
// restarted without its state, an agent re-registers its services) does
// not empty the mesh's endpoint sets. Two rules start holds, each in its
// own file: a Consul resync (resync.go) and a removal of most of a
// service's instances without failing checks (removal.go). This file is
// the one mechanism both use.
//
// While a hold is in force the coordinator stores, for the service, the
// union of Consul's latest answer and what the hold kept: instances that
// come back or change apply at once, those still missing keep their last
// known registration and health. When the hold ends, Consul's latest
// answer applies as it is, removals included; a service whose watch has
// stopped (it left Consul's catalog) is dropped.
//
// Holds belong to the coordinator goroutine.
type serviceHold struct {
	until time.Time
	kept  serviceResult  // what Consul listed before the removal
	raw   *serviceResult // Consul's latest answer since; nil if none
}

// holdService holds service name's current result until until, or
// extends a hold already in force to until; the hold then keeps what the
// service has now, a superset of what it kept.
func (c *coordinator) holdService(name string, until time.Time) {
	h := c.holds[name]
	if h == nil {
		h = &serviceHold{}
		c.holds[name] = h
	}
	h.until = maxTime(h.until, until)
	h.kept = c.state.services[name]
	c.armHoldTimer()
}

// held reports whether service name is held.
func (c *coordinator) held(name string) bool { return c.holds[name] != nil }

// heldResult is what to store for service name given Consul's answer r:
// r, plus what a hold of the service keeps that r lacks.
func (c *coordinator) heldResult(name string, r serviceResult) serviceResult {
	h := c.holds[name]
	if h == nil {
		return r
	}
	h.raw = &r
	return unionResults(r, h.kept)
}

// endHolds ends the holds whose deadline has passed at now: Consul's
// latest answer of each such service applies as it is.
func (c *coordinator) endHolds(now time.Time) {
	dropped, applied := 0, 0
	for _, name := range slices.Sorted(maps.Keys(c.holds)) {
		h := c.holds[name]
		if now.Before(h.until) {
			continue
		}
		delete(c.holds, name)
		switch {
		case c.watches[name] == nil:
			c.state.deleteService(name)
			dropped++
		case h.raw != nil:
			c.state.setService(name, *h.raw)
			applied++
		}
	}
	c.env.stats.held.Store(int64(len(c.holds)))
	if dropped+applied > 0 {
		c.env.logger.Info("hold over: Consul's catalog applies as it is", "services applied", applied, "services dropped", dropped)
	}
	c.armHoldTimer()
}

// armHoldTimer makes the hold timer fire at the earliest deadline.
func (c *coordinator) armHoldTimer() {
	c.env.stats.held.Store(int64(len(c.holds)))
	c.holdTimer.Stop()
	var first time.Time
	for _, h := range c.holds {
		if first.IsZero() || h.until.Before(first) {
			first = h.until
		}
	}
	if !first.IsZero() {
		c.holdTimer.Reset(time.Until(first))
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// unionResults returns cur plus the proxies and endpoints of old that
// cur lacks.
func unionResults(cur, old serviceResult) serviceResult {
	return serviceResult{
		proxies: unionBy(cur.proxies, old.proxies, func(p *catalog.Proxy) string { return p.ID + "\x00" + p.Node },
			func(a, b *catalog.Proxy) int { return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Node, b.Node)) }),
		endpoints: unionBy(cur.endpoints, old.endpoints, endpointKey,
			func(a, b catalog.Endpoint) int {
				return cmp.Or(cmp.Compare(a.ProxyID, b.ProxyID), cmp.Compare(a.Node, b.Node))
			}),
	}
}

// endpointKey identifies an instance: sidecar IDs are unique per node.
func endpointKey(e catalog.Endpoint) string { return e.ProxyID + "\x00" + e.Node }

// unionBy returns cur plus the elements of old whose key cur lacks,
// sorted by less. cur is returned as is when nothing is added.
func unionBy[T any](cur, old []T, key func(T) string, compare func(a, b T) int) []T {
	have := make(map[string]bool, len(cur))
	for _, v := range cur {
		have[key(v)] = true
	}
	var out []T
	for _, v := range old {
		if !have[key(v)] {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return cur
	}
	out = append(slices.Clone(cur), out...)
	slices.SortFunc(out, compare)
	return out
}
