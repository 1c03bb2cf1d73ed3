// Package roundrobin implements weighted round robin over an immutable
// endpoint set.
//
// Weights are honoured by expanding the endpoints into a fixed schedule
// that interleaves them smoothly (the order nginx's smooth weighted round
// robin produces), computed once when the picker is built. Pick is then a
// single atomic increment into that schedule.
package roundrobin

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/weft-mesh/weft/proxy/balancer"
)

// maxSchedule bounds the schedule length; larger weight sums are scaled
// down proportionally (every endpoint keeps at least one slot).
const maxSchedule = 4096

type picker struct {
	endpoints []balancer.Endpoint
	schedule  []uint32 // indexes into endpoints
	next      atomic.Uint64
}

var _ balancer.Picker = (*picker)(nil)

// New is a balancer.Builder. The first pick starts at a random point of
// the schedule so that a fleet of sidecars does not hit the same endpoint
// first.
func New(endpoints []balancer.Endpoint) balancer.Picker {
	p := &picker{endpoints: endpoints, schedule: schedule(endpoints)}
	if n := len(p.schedule); n > 0 {
		p.next.Store(rand.Uint64N(uint64(n)))
	}
	return p
}

// Pick returns the next endpoint of the schedule.
func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	n := uint64(len(p.schedule))
	if n == 0 {
		return balancer.PickResult{}, balancer.ErrNoEndpoint
	}
	i := p.schedule[(p.next.Add(1)-1)%n]
	return balancer.PickResult{Endpoint: &p.endpoints[i]}, nil
}

// schedule expands endpoints by weight into a smooth order.
func schedule(endpoints []balancer.Endpoint) []uint32 {
	weights := scaledWeights(endpoints)
	total := 0
	for _, w := range weights {
		total += w
	}
	out := make([]uint32, 0, total)
	current := make([]int, len(weights))
	for range total {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out = append(out, uint32(best))
	}
	return out
}

// scaledWeights divides weights by their GCD and, if their sum still
// exceeds maxSchedule, scales them down keeping each at least 1.
func scaledWeights(endpoints []balancer.Endpoint) []int {
	g, sum := 0, 0
	weights := make([]int, len(endpoints))
	for i, e := range endpoints {
		weights[i] = max(int(e.Weight), 1)
		g = gcd(g, weights[i])
	}
	for i := range weights {
		weights[i] /= g
		sum += weights[i]
	}
	if sum <= maxSchedule {
		return weights
	}
	for i, w := range weights {
		weights[i] = max(w*maxSchedule/sum, 1)
	}
	return weights
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
