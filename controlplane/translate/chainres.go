package translate

import (
	"fmt"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// chainKey identifies a chain: L4 and L7 chains of one service differ (an
// L4 chain has no routes and applies no splitter or router).
type chainKey struct {
	service, dc string
	l7          bool
}

// chainResources are the resources a chain contributes to every proxy with
// an upstream to its service. Clusters are not among them: they depend on
// the upstream's settings too (translator.cluster).
type chainResources struct {
	*chain
	// routes is the chain's route configuration; nil for L4 chains.
	routes *routev3.RouteConfiguration
	// loads are the load assignments of chain.targets, in the same order.
	loads []*endpointv3.ClusterLoadAssignment
	// problems say which config entries of the chain were not applied and
	// why; they are reported for every proxy using the chain.
	problems []string
	// inputs are the parts of the snapshot the chain was built from.
	inputs []input
}

// chainFor returns the chain of service in dc, compiling it and building
// its resources once per Translate. A chain whose entries do not compile,
// or would yield an invalid resource, falls back first to the service's
// resolver alone, then to every instance of the service with no entry
// applied, recording why.
func (t *translator) chainFor(service, dc string, l7 bool) *chainResources {
	key := chainKey{service, dc, l7}
	if cr, ok := t.chains[key]; ok {
		t.replay(cr.inputs)
		return cr
	}
	mark := len(t.inputs)
	var problems []string
	levels := t.chainLevels(service, l7)
	for i, level := range levels {
		c, err := t.compileChain(service, dc, l7, level)
		var cr *chainResources
		if err == nil {
			cr, err = t.buildChain(c)
		}
		if err == nil {
			cr.problems = append(problems, t.chainNotes(c)...)
			cr.inputs = t.inputsSince(mark)
			t.chains[key] = cr
			return cr
		}
		if level == plainChain {
			// Not reached: without config entries a chain is one target
			// with the catalog's own instances, as before L7 routing.
			panic(fmt.Sprintf("translate: the plain chain of %q does not build: %v", service, err))
		}
		problems = append(problems, fmt.Sprintf("%v; %s", err, fallbackNote(levels[i+1], service)))
	}
	panic("unreachable: the last level is plainChain")
}

// chainLevels lists the levels to try, most complete first, skipping the
// resolver-only level when the full chain would route nothing.
func (t *translator) chainLevels(service string, l7 bool) []chainLevel {
	routed := l7 && (t.router(service) != nil || t.splitter(service) != nil)
	if routed {
		return []chainLevel{fullChain, resolverOnly, plainChain}
	}
	return []chainLevel{fullChain, plainChain}
}

// fallbackNote says what falling back to level leaves out.
func fallbackNote(level chainLevel, service string) string {
	if level == resolverOnly {
		return fmt.Sprintf("the service-router and service-splitter entries of %q are not applied", service)
	}
	return fmt.Sprintf("no config entry applies: requests go to every instance of %q", service)
}

// chainNotes names what a compiled chain leaves out: the router and
// splitter of an L4 chain, and the instances of redirect and failover
// targets in other datacenters, which the catalog does not hold.
func (t *translator) chainNotes(c *chain) []string {
	var notes []string
	if !c.l7 && t.router(c.service) != nil {
		notes = append(notes, fmt.Sprintf("service-router %q is not applied: the upstream's protocol is not http, http2 or grpc", c.service))
	}
	if !c.l7 && t.splitter(c.service) != nil {
		notes = append(notes, fmt.Sprintf("service-splitter %q is not applied: the upstream's protocol is not http, http2 or grpc", c.service))
	}
	remote := func(tg target) {
		notes = append(notes, fmt.Sprintf("target %q is in datacenter %q, whose instances Weft does not watch; it adds none", tg.clusterName(), tg.dc))
	}
	for _, r := range c.targets {
		if r.target.dc != c.dc && r.target.dc != t.snap.Datacenter {
			remote(r.target)
		}
		for _, f := range r.failover {
			if f.target.peer == "" && f.target.dc != t.snap.Datacenter {
				remote(f.target)
			}
		}
	}
	return notes
}

// buildChain builds a chain's load assignments and route configuration
// and validates them.
func (t *translator) buildChain(c *chain) (*chainResources, error) {
	cr := &chainResources{chain: c}
	for _, r := range c.targets {
		cla := t.loadAssignmentOf(r)
		if err := cla.ValidateAll(); err != nil {
			return nil, fmt.Errorf("load assignment %q: %w", cla.ClusterName, err)
		}
		cr.loads = append(cr.loads, cla)
	}
	if c.l7 {
		cr.routes = chainRouteConfig(routeNameIn(c.service, c.dc, t.snap.Datacenter), c)
		if err := cr.routes.ValidateAll(); err != nil {
			return nil, fmt.Errorf("route configuration %q: %w", cr.routes.Name, err)
		}
	}
	return cr, nil
}

// loadAssignmentOf returns the load assignment of a resolved target,
// built once per Translate.
func (t *translator) loadAssignmentOf(r *resolution) *endpointv3.ClusterLoadAssignment {
	if l, ok := t.loads[r]; ok {
		t.replay(l.inputs)
		return l.cla
	}
	mark := len(t.inputs)
	cla := t.resolutionLoadAssignment(r)
	t.loads[r] = loadResult{cla, t.inputsSince(mark)}
	t.recipes[cla] = loadSource{func(t *translator) *endpointv3.ClusterLoadAssignment { return t.loadAssignmentOf(r) }, t.loads[r].inputs}
	return cla
}

// loadResult is a memoized load assignment and the parts of the snapshot
// it was built from.
type loadResult struct {
	cla    *endpointv3.ClusterLoadAssignment
	inputs []input
}

// plainResolution is a target with no service-resolver applied, for
// chains that fall back to every instance of a service; one per target.
func (t *translator) plainResolution(tg target) *resolution {
	if r, ok := t.plain[tg]; ok {
		return r
	}
	r := &resolution{target: tg}
	t.plain[tg] = r
	return r
}
