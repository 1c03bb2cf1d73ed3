package translate

import (
	"fmt"
	"maps"
	"slices"

	"github.com/weft-mesh/weft/catalog"
)

// usableEndpoints are the instances of a service that a proxy can dial,
// and a problem for each one left out, by its proxy ID.
type usableEndpoints struct {
	endpoints []catalog.Endpoint
	problems  []endpointProblem
}

type endpointProblem struct {
	proxyID string
	err     error
}

// usableOf returns the instances of a service that have an address and a
// valid port, and whether any was left out.
func usableOf(service string, all []catalog.Endpoint) (usableEndpoints, bool) {
	var u usableEndpoints
	for _, e := range all {
		if e.Address != "" && validPort(e.Port) {
			u.endpoints = append(u.endpoints, e)
			continue
		}
		u.problems = append(u.problems, endpointProblem{e.ProxyID, fmt.Errorf(
			"instance %q of service %q: address %q port %d cannot be dialed; left out of load assignments", e.ProxyID, service, e.Address, e.Port)})
	}
	return u, len(u.problems) > 0
}

// updateUsable finds the services with instances no proxy could dial:
// among every service after a full change, else among those whose
// instances changed.
func (x *Translator) updateUsable(snap *catalog.Snapshot, changed map[input]bool, full bool) {
	check := func(service string) {
		if u, some := usableOf(service, snap.Endpoints[service]); some {
			x.unusable[service] = u
		} else {
			delete(x.unusable, service)
		}
	}
	if full {
		clear(x.unusable)
		for service := range snap.Endpoints {
			check(service)
		}
		return
	}
	for in := range changed {
		if in.kind == inEndpoints {
			check(in.name)
		}
	}
}

// usableOverrides are the dialable instances of the services that have
// others; nil when there are none.
func (x *Translator) usableOverrides() map[string][]catalog.Endpoint {
	if len(x.unusable) == 0 {
		return nil
	}
	out := make(map[string][]catalog.Endpoint, len(x.unusable))
	for service, u := range x.unusable {
		out[service] = u.endpoints
	}
	return out
}

// endpointProblems reports each instance left out, under its own proxy ID,
// in order of service name.
func (x *Translator) endpointProblems() map[string][]error {
	problems := map[string][]error{}
	for _, service := range slices.Sorted(maps.Keys(x.unusable)) {
		for _, p := range x.unusable[service].problems {
			problems[p.proxyID] = append(problems[p.proxyID], p.err)
		}
	}
	return problems
}
