package discovery

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// resyncHold protects the mesh from a Consul that comes back without its
// state (RELIABILITY #2). When the catalog's index goes backwards, Consul
// lost its data (a dev agent or a server restored from an old snapshot),
// and its agents re-register their services only over the next
// anti-entropy rounds. Until ResyncGrace has passed, the coordinator then
// publishes the union of what it knew before and what Consul says now:
// services and instances that come back or change apply at once, those
// still missing keep their last known registration and health. When the
// grace ends, Consul's answers apply as they are, removals included.
//
// It belongs to the coordinator goroutine.
type resyncHold struct {
	until  time.Time
	before map[string]serviceResult // the services known when Consul reset
	raw    map[string]serviceResult // Consul's own answers during the hold
}

// holding reports whether a hold is in force at now.
func (c *coordinator) holding(now time.Time) bool {
	return c.hold != nil && now.Before(c.hold.until)
}

// startHold begins a hold after Consul's catalog index went backwards,
// unless there is nothing to protect or holds are off.
func (c *coordinator) startHold(now time.Time) {
	grace := c.env.cfg.ResyncGrace
	if grace <= 0 || len(c.state.services) == 0 || c.holding(now) {
		return
	}
	c.hold = &resyncHold{until: now.Add(grace), before: maps.Clone(c.state.services), raw: map[string]serviceResult{}}
	c.holdTimer.Reset(grace)
	c.env.logger.Warn("Consul's catalog index went backwards: it lost its state; keeping services and instances it no longer lists until its agents re-register them",
		"services", len(c.hold.before), "grace", grace)
}

// endHold applies Consul's answers as they are: services it no longer
// lists are dropped, and every held service gets its latest answer.
func (c *coordinator) endHold() {
	h := c.hold
	c.hold = nil
	if h == nil {
		return
	}
	dropped := 0
	for _, name := range slices.Sorted(maps.Keys(c.state.services)) {
		if c.watches[name] == nil {
			c.state.deleteService(name)
			dropped++
		} else if r, ok := h.raw[name]; ok {
			c.state.setService(name, r)
		}
	}
	c.env.logger.Info("Consul resync grace over: its catalog applies as it is", "services dropped", dropped)
}

// beforeOf returns what a hold knew of service name before the reset.
func (h *resyncHold) beforeOf(name string) (serviceResult, bool) {
	if h == nil {
		return serviceResult{}, false
	}
	r, ok := h.before[name]
	return r, ok
}

// heldResult is what to store for service name given Consul's answer r
// during a hold: r plus the proxies and endpoints known before the reset
// that r lacks.
func (h *resyncHold) heldResult(name string, r serviceResult) serviceResult {
	h.raw[name] = r
	old, ok := h.before[name]
	if !ok {
		return r
	}
	return serviceResult{
		proxies: unionBy(r.proxies, old.proxies, func(p *catalog.Proxy) string { return p.ID + "\x00" + p.Node },
			func(a, b *catalog.Proxy) int { return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Node, b.Node)) }),
		endpoints: unionBy(r.endpoints, old.endpoints, func(e catalog.Endpoint) string { return e.ProxyID + "\x00" + e.Node },
			func(a, b catalog.Endpoint) int {
				return cmp.Or(cmp.Compare(a.ProxyID, b.ProxyID), cmp.Compare(a.Node, b.Node))
			}),
	}
}

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
