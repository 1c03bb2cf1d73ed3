package cluster

import (
	"cmp"
	"slices"

	"github.com/weft-mesh/weft/proxy/balancer"
)

// overprovisioning is Envoy's default overprovisioning factor (1.4, in
// percent): a priority whose available share, times it, reaches 100 %
// is whole, and then no priority panics.
const overprovisioning = 140

// selection is what a cluster's picker balances over, decided when the
// picker is built (never per request): the hosts of one priority, or,
// in panic mode, more.
type selection struct {
	// healthy counts the hosts HEALTHY or UNKNOWN in EDS, ejected or not.
	healthy int
	// panic reports that too few hosts are available, so that the picker
	// balances over every host of the chosen priority, healthy or not
	// (Envoy's healthy_panic_threshold).
	panic bool
	// health is Envoy's health of the cluster's priorities (healthOf),
	// by which an aggregate cluster shares requests among its children.
	health int
	// endpoints are what the picker is built over.
	endpoints []balancer.Endpoint
}

// available reports whether a host may get traffic outside panic mode:
// healthy in EDS and not ejected by outlier detection. Envoy too counts
// ejected hosts as unhealthy when it decides on panic.
func (e entry) available() bool { return e.ep.Healthy && e.host.outlier.Available() }

// level is one priority's host counts.
type level struct {
	priority         uint32
	total, available int
}

// levelsOf counts hosts per priority, in increasing priority number.
func levelsOf(hosts []entry) []level {
	var out []level
	for _, e := range hosts {
		i, found := slices.BinarySearchFunc(out, e.ep.Priority, func(l level, p uint32) int { return cmp.Compare(l.priority, p) })
		if !found {
			out = slices.Insert(out, i, level{priority: e.ep.Priority})
		}
		out[i].total++
		if e.available() {
			out[i].available++
		}
	}
	return out
}

// health is Envoy's health of a priority, in percent: its available
// share times the overprovisioning factor, at most 100.
func (l level) health() int { return min(100, overprovisioning*l.available/l.total) }

// healthOf sums the priorities' health: Envoy's total availability
// before it is normalized (capped at 100). At 100 the priorities are
// whole: available enough together that none panics.
func healthOf(levels []level) int {
	sum := 0
	for _, l := range levels {
		sum += l.health()
	}
	return sum
}

// selectHosts decides what the picker balances over, as Envoy does with
// priorities and healthy_panic_threshold (threshold, in percent; 0 turns
// panic mode off):
//   - the available hosts of the best priority that has any, unless its
//     available share is below threshold and the priorities together are
//     not whole: then every host of that priority (panic);
//   - when no host is available at any priority: every host of every
//     priority (Envoy's total panic), or none with panic mode off.
//
// In panic mode hosts that outlier detection ejected stay out: an
// ejection is evidence from real requests, EDS health is only Consul's
// checks (Envoy would send them traffic too; max_ejection_percent bounds
// how many there are).
func selectHosts(hosts []entry, threshold float64) selection {
	s := selection{}
	for _, e := range hosts {
		if e.ep.Healthy {
			s.healthy++
		}
	}
	levels := levelsOf(hosts)
	s.health = healthOf(levels)
	for _, l := range levels {
		if l.available == 0 {
			continue
		}
		s.panic = threshold > 0 && s.health < 100 && 100*float64(l.available) < threshold*float64(l.total)
		s.endpoints = endpointsOf(hosts, func(e entry) bool {
			return e.ep.Priority == l.priority && (e.available() || s.panic && e.host.outlier.Available())
		})
		return s
	}
	if threshold > 0 && len(hosts) > 0 {
		s.panic = true
		s.endpoints = endpointsOf(hosts, func(e entry) bool { return e.host.outlier.Available() })
	}
	return s
}

// endpointsOf returns the balancer endpoints of the hosts keep keeps.
func endpointsOf(hosts []entry, keep func(entry) bool) []balancer.Endpoint {
	var eps []balancer.Endpoint
	for _, e := range hosts {
		if keep(e) {
			eps = append(eps, balancer.Endpoint{Address: e.ep.Address, Weight: e.ep.Weight, Active: &e.host.active, Ref: e.host})
		}
	}
	return eps
}
