package balancer

import (
	"math/rand/v2"
	"sort"
)

// Cumulative draws endpoint indexes at random in proportion to their
// weights. It is immutable and safe for concurrent use.
type Cumulative struct {
	sums  []uint64 // sums[i] is the total weight of endpoints 0..i
	equal bool     // every weight is the same: draw uniformly
}

// NewCumulative prepares weighted draws over endpoints.
func NewCumulative(endpoints []Endpoint) Cumulative {
	c := Cumulative{sums: make([]uint64, len(endpoints)), equal: true}
	var total uint64
	for i, e := range endpoints {
		total += uint64(max(e.Weight, 1))
		c.sums[i] = total
		if e.Weight != endpoints[0].Weight {
			c.equal = false
		}
	}
	return c
}

// Draw returns a random index, weighted; len must be > 0.
func (c Cumulative) Draw() int {
	n := len(c.sums)
	if c.equal {
		return rand.IntN(n)
	}
	r := rand.Uint64N(c.sums[n-1])
	return sort.Search(n, func(i int) bool { return c.sums[i] > r })
}
