// Package ringhash implements Envoy's RING_HASH policy (a Ketama-style
// consistent hash ring): each endpoint owns ring entries in proportion to
// its weight, at xxHash64("<address>_<i>"), and a request goes to the
// first entry clockwise from its hash. Adding or removing an endpoint
// moves only the requests of its own arcs.
package ringhash

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/weft-mesh/weft/proxy/balancer"
)

// Envoy's ring_hash_lb_config defaults.
const (
	DefaultMinRingSize = 1024
	DefaultMaxRingSize = 8 << 20
)

type entry struct {
	hash uint64
	idx  int32
}

type picker struct {
	endpoints []balancer.Endpoint
	ring      []entry // sorted by hash
}

var _ balancer.Picker = (*picker)(nil)

// Builder returns a balancer.Builder for rings of between minSize and
// maxSize entries (defaults when 0).
func Builder(minSize, maxSize uint64) balancer.Builder {
	if minSize == 0 {
		minSize = DefaultMinRingSize
	}
	if maxSize == 0 {
		maxSize = DefaultMaxRingSize
	}
	return func(endpoints []balancer.Endpoint) balancer.Picker {
		if len(endpoints) == 0 {
			return balancer.Empty{}
		}
		return &picker{endpoints: endpoints, ring: buildRing(endpoints, minSize, maxSize)}
	}
}

// buildRing follows Envoy's RingHashLoadBalancer::Ring: the scale gives
// the lightest endpoint a whole number of entries (at least minSize in
// all, at most maxSize), and running sums spread the fractions.
func buildRing(endpoints []balancer.Endpoint, minSize, maxSize uint64) []entry {
	var total float64
	for _, e := range endpoints {
		total += float64(max(e.Weight, 1))
	}
	minNorm := math.MaxFloat64
	for _, e := range endpoints {
		minNorm = min(minNorm, float64(max(e.Weight, 1))/total)
	}
	scale := min(math.Ceil(minNorm*float64(minSize))/minNorm, float64(maxSize))
	ring := make([]entry, 0, uint64(math.Ceil(scale)))
	var current, target float64
	key := make([]byte, 0, 64)
	for i, e := range endpoints {
		target += scale * float64(max(e.Weight, 1)) / total
		key = append(append(key[:0], e.Address...), '_')
		prefix := len(key)
		for n := uint64(0); current < target; n++ {
			key = strconv.AppendUint(key[:prefix], n, 10)
			ring = append(ring, entry{hash: xxhash.Sum64(key), idx: int32(i)})
			current++
		}
	}
	slices.SortFunc(ring, func(a, b entry) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return ring
}

// Pick returns the endpoint owning the request's hash, or a random one
// when the request has no hash.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	if !info.HasHash {
		return balancer.PickResult{Endpoint: &p.endpoints[rand.IntN(len(p.endpoints))]}, nil
	}
	h := balancer.RetryHash(info)
	i, _ := slices.BinarySearchFunc(p.ring, h, func(e entry, h uint64) int {
		switch {
		case e.hash < h:
			return -1
		case e.hash > h:
			return 1
		}
		return 0
	})
	if i == len(p.ring) {
		i = 0
	}
	return balancer.PickResult{Endpoint: &p.endpoints[p.ring[i].idx]}, nil
}
