// Package maglev implements Envoy's MAGLEV policy: a lookup table of
// prime size where each endpoint fills slots along its own permutation
// (offset and skip from xxHash64 of its address), weighted as Envoy's
// MaglevTable does; a request goes to table[hash % size]. Compared with
// a ring it builds and looks up faster, and moves about as few requests
// when endpoints change.
package maglev

import (
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"

	"github.com/weft-mesh/weft/proxy/balancer"
)

// DefaultTableSize is Envoy's maglev_lb_config.table_size default.
const DefaultTableSize = 65537

type picker struct {
	endpoints []balancer.Endpoint
	// table holds endpoint indexes; 2 bytes a slot (128 KiB at the
	// default size) while a cluster has fewer than 65536 endpoints.
	table []uint16
	wide  []uint32 // instead of table for larger clusters
}

var _ balancer.Picker = (*picker)(nil)

// Builder returns a balancer.Builder for tables of size entries, which
// must be prime (DefaultTableSize when 0).
func Builder(size uint64) balancer.Builder {
	if size == 0 {
		size = DefaultTableSize
	}
	return func(endpoints []balancer.Endpoint) balancer.Picker {
		if len(endpoints) == 0 {
			return balancer.Empty{}
		}
		t := buildTable(endpoints, size)
		if len(endpoints) > 1<<16-1 {
			return &picker{endpoints: endpoints, wide: t}
		}
		narrow := make([]uint16, len(t))
		for i, e := range t {
			narrow[i] = uint16(e)
		}
		return &picker{endpoints: endpoints, table: narrow}
	}
}

type build struct {
	offset, skip, next uint64
	weight, target     float64
}

// buildTable populates the table as Envoy's MaglevTable: in each round an
// endpoint of the largest weight takes one slot and lighter ones take a
// slot every max/weight rounds, each at the next free position of its
// permutation offset + next*skip.
func buildTable(endpoints []balancer.Endpoint, size uint64) []uint32 {
	const empty = ^uint32(0)
	table := make([]uint32, size)
	for i := range table {
		table[i] = empty
	}
	entries := make([]build, len(endpoints))
	var maxWeight float64
	for i, e := range endpoints {
		w := float64(max(e.Weight, 1))
		maxWeight = max(maxWeight, w)
		entries[i] = build{
			offset: xxhash.Sum64String(e.Address) % size,
			skip:   seeded(e.Address, 1)%(size-1) + 1,
			weight: w,
		}
	}
	filled := uint64(0)
	for round := uint64(0); ; round++ {
		for i := range entries {
			b := &entries[i]
			if float64(round)*b.weight < b.target {
				continue
			}
			b.target += maxWeight
			c := (b.offset + b.skip*b.next) % size
			for table[c] != empty {
				b.next++
				c = (b.offset + b.skip*b.next) % size
			}
			table[c] = uint32(i)
			b.next++
			if filled++; filled == size {
				return table
			}
		}
	}
}

func seeded(s string, seed uint64) uint64 {
	d := xxhash.NewWithSeed(seed)
	d.WriteString(s)
	return d.Sum64()
}

// Pick returns the table's endpoint for the request's hash, or a random
// one when the request has no hash.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	if !info.HasHash {
		return balancer.PickResult{Endpoint: &p.endpoints[rand.IntN(len(p.endpoints))]}, nil
	}
	h := balancer.RetryHash(info)
	if p.wide != nil {
		return balancer.PickResult{Endpoint: &p.endpoints[p.wide[h%uint64(len(p.wide))]]}, nil
	}
	return balancer.PickResult{Endpoint: &p.endpoints[p.table[h%uint64(len(p.table))]]}, nil
}
