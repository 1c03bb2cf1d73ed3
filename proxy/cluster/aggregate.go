package cluster

import (
	"math/rand/v2"
	"slices"

	"github.com/weft-mesh/weft/proxy/balancer"
)

// An aggregate cluster (config.Cluster.Aggregate, Envoy's
// envoy.clusters.aggregate) has no hosts: each attempt goes to a host
// of one of its children, which are clusters of their own (their TLS,
// limits, outlier detection and protocol apply). As Envoy's aggregate
// load balancer does, it sees the children's priorities, in order, as
// one list of priorities and shares requests among them by their
// health (selection.go: each priority's available share times the
// overprovisioning factor 1.4, at most 100 %): the first child takes
// all of its health, the next what remains, and so on up to 100 %;
// when all of them together fall short of 100 %, each takes its share
// of their sum. So a child of one priority with at least 72 % of its
// hosts available takes every request, and below that the next child
// takes the rest. Within a child, the child's own rule applies: its
// best priority with an available host, in panic mode when that is
// too few (selection.go); Envoy would spill over between a child's
// priorities too.
//
// When no child has an available host, the aggregate balances over
// the children's unhealthy hosts (Envoy's total panic), each child
// taking a share by the hosts its panic picker holds, unless the
// aggregate's healthy_panic_threshold is 0.
//
// The choice is made per attempt from the children's current pickers:
// an endpoint change or an ejection in a child is seen by the next
// request. A retry that must avoid the hosts tried (PickInfo and
// Pick's avoid) goes to another child when the chosen one has no other
// host. Nothing of this locks or allocates.

// pickChild picks a host of a child of the aggregate cluster whose
// state is st: first of the child its health share chose, then of the
// other children that may take requests, in order; a host to avoid
// only when none has another.
func pickChild(st *state, info balancer.PickInfo, avoid []*Host, avoidTries int) (Attempt, error) {
	children := st.children
	first, panic := chooseChild(children, st.cfg.LB.PanicThreshold)
	if first < 0 {
		return Attempt{}, childrenNoHost(children)
	}
	strict := avoidTries > 0
	a, avoided, err := children[first].pick(info, avoid, avoidTries, strict)
	if err == nil {
		return a, nil
	}
	avoidedIn := children[first]
	for i, child := range children {
		if i == first || !takesRequests(child.state.Load(), panic) {
			continue
		}
		a, h, err := child.pick(info, avoid, avoidTries, strict)
		if err == nil {
			return a, nil
		}
		if avoided == nil && h != nil {
			avoided, avoidedIn = h, child
		}
	}
	if avoided != nil {
		if a, ok := avoidedIn.admit(avoided); ok {
			return a, nil
		}
	}
	return Attempt{}, childrenNoHost(children)
}

// takesRequests reports whether a child whose state is st takes a share
// of an aggregate's requests: it has health, or, in total panic, a
// picker over unhealthy hosts.
func takesRequests(st *state, panic bool) bool {
	if panic {
		return st.picked > 0
	}
	return st.health > 0
}

// weight is a child's weight in the choice: its health, or in total
// panic the hosts its picker holds.
func weight(st *state, panic bool) int {
	if panic {
		return st.picked
	}
	return st.health
}

// chooseChild draws the child of an aggregate cluster an attempt goes to
// (see above); -1 when none may take it. panic reports total panic: no
// child has an available host.
func chooseChild(children []*Cluster, threshold float64) (int, bool) {
	panic, total := totalOf(children)
	if total == 0 || panic && threshold == 0 {
		return -1, panic
	}
	x := rand.IntN(limitOf(total, panic))
	sum := 0
	for i, child := range children {
		if sum += weight(child.state.Load(), panic); x < sum {
			return i, panic
		}
	}
	// A child changed since totalOf: the first that may take it.
	for i, child := range children {
		if takesRequests(child.state.Load(), panic) {
			return i, panic
		}
	}
	return -1, panic
}

// totalOf sums the children's weights: their health, or when that is 0
// (total panic), the hosts of their panic pickers.
func totalOf(children []*Cluster) (panic bool, total int) {
	for _, child := range children {
		total += child.state.Load().health
	}
	if total > 0 {
		return false, total
	}
	for _, child := range children {
		total += child.state.Load().picked
	}
	return true, total
}

// limitOf is what the children's weights are shared out of: 100 % of
// their health, or all of it when they fall short of 100 % together
// (Envoy's normalized total availability); in total panic, all hosts.
func limitOf(total int, panic bool) int {
	if panic {
		return total
	}
	return min(100, total)
}

// childrenNoHost is the error of an aggregate whose children had no
// host to give: ErrCircuitOpen when some have healthy hosts, all
// ejected.
func childrenNoHost(children []*Cluster) error {
	for _, child := range children {
		if child.state.Load().healthy > 0 {
			return ErrCircuitOpen
		}
	}
	return ErrNoHealthyUpstream
}

// shares are the percentages of new requests the children take now (the
// choice of chooseChild, without the draw), and whether in total panic.
func shares(children []*Cluster, threshold float64) ([]int, bool) {
	out := make([]int, len(children))
	panic, total := totalOf(children)
	if total == 0 || panic && threshold == 0 {
		return out, panic
	}
	limit := limitOf(total, panic)
	sum, before := 0, 0
	for i, child := range children {
		sum += weight(child.state.Load(), panic)
		upTo := min(limit, sum) * 100 / limit
		out[i], before = upTo-before, upTo
	}
	return out, panic
}

// setChildren publishes an aggregate cluster's children, resolved from
// the names of its configuration.
func (c *Cluster) setChildren(children []*Cluster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.state.Load()
	if slices.Equal(old.children, children) {
		return
	}
	next := *old
	next.children = children
	c.state.Store(&next)
}

// IsAggregate reports whether c is an aggregate cluster: Pick chooses
// a child, whose cluster the attempt names (Attempt.Cluster).
func (c *Cluster) IsAggregate() bool { return c.state.Load().cfg.Aggregate != nil }
