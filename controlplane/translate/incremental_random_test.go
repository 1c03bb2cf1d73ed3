package translate

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weft-mesh/weft/catalog"
)

// TestTranslatorRandomChanges drives a Translator through sequences of
// random single changes to random catalogs in which chains share
// resolvers, splitters, failover targets and subsets, and checks every
// result against a full translation. A dependency the Translator fails to
// track shows up as a proxy keeping stale resources.
func TestTranslatorRandomChanges(t *testing.T) {
	seeds, steps := 30, 25
	if testing.Short() {
		seeds = 8
	}
	for seed := range seeds {
		g := catalogGen{rand.New(rand.NewPCG(uint64(seed), 7))}
		snap := g.snapshot()
		mesh := testMesh
		if seed%3 == 0 {
			mesh.DefaultPolicy = ""
		}
		x := newCheckedTranslator(t)
		x.Translate(snap, mesh)
		for step := range steps {
			next, what := g.change(snap)
			assertSameTranslation(t, fmt.Sprintf("seed %d step %d (%s)", seed, step, what), x.Translate(next, mesh), next, mesh)
			snap = next
		}
	}
}

// catalogGen makes random catalogs over a few services, so that chains
// overlap.
type catalogGen struct{ r *rand.Rand }

var genServices = []string{"a", "b", "c", "d", "e"}

func (g catalogGen) service() string { return genServices[g.r.IntN(len(genServices))] }

func (g catalogGen) snapshot() *catalog.Snapshot {
	s := &catalog.Snapshot{
		Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{}, Endpoints: map[string][]catalog.Endpoint{},
		ServiceDefaults: map[string]*catalog.ServiceDefaults{}, ServiceResolvers: map[string]*catalog.ServiceResolver{},
		ServiceSplitters: map[string]*catalog.ServiceSplitter{}, ServiceRouters: map[string]*catalog.ServiceRouter{},
		Intentions: map[string][]catalog.Intention{},
	}
	for i := range 6 {
		id := fmt.Sprintf("p%d", i)
		s.Proxies[id] = g.proxy(id)
	}
	for _, svc := range genServices {
		for kind := range 6 {
			g.setEntry(s, kind, svc)
		}
	}
	return s
}

func (g catalogGen) proxy(id string) *catalog.Proxy {
	p := &catalog.Proxy{ID: id, Name: id, Address: "10.0.0.1", Port: 21000 + g.r.IntN(3),
		DestinationName: g.service(), LocalPort: 8080}
	for i := range g.r.IntN(4) {
		u := catalog.Upstream{DestinationName: g.service(), LocalBindPort: 9000 + i}
		if g.r.IntN(4) == 0 {
			u.Protocol = catalog.ProtocolHTTP
		}
		p.Upstreams = append(p.Upstreams, u)
	}
	if g.r.IntN(4) == 0 {
		p.Mode = catalog.ModeTransparent
	}
	return p
}

// setEntry sets or removes, at random, one kind of value of a service:
// 0 instances, 1 service-defaults, 2 resolver, 3 splitter, 4 router,
// 5 intentions.
func (g catalogGen) setEntry(s *catalog.Snapshot, kind int, svc string) {
	present := g.r.IntN(3) > 0
	switch kind {
	case 0:
		delete(s.Endpoints, svc)
		if present {
			s.Endpoints[svc] = g.endpoints(svc)
		}
	case 1:
		delete(s.ServiceDefaults, svc)
		if present {
			protocols := []string{catalog.ProtocolTCP, catalog.ProtocolHTTP, catalog.ProtocolHTTP, catalog.ProtocolGRPC}
			s.ServiceDefaults[svc] = &catalog.ServiceDefaults{Name: svc, Protocol: protocols[g.r.IntN(len(protocols))]}
		}
	case 2:
		delete(s.ServiceResolvers, svc)
		if present {
			s.ServiceResolvers[svc] = g.resolver(svc)
		}
	case 3:
		delete(s.ServiceSplitters, svc)
		if present {
			s.ServiceSplitters[svc] = &catalog.ServiceSplitter{Name: svc, Splits: []catalog.Split{
				{Weight: 50, Service: g.service()}, {Weight: 50, Service: g.service(), ServiceSubset: g.subset()}}}
		}
	case 4:
		delete(s.ServiceRouters, svc)
		if present {
			s.ServiceRouters[svc] = &catalog.ServiceRouter{Name: svc, Routes: []catalog.ServiceRoute{{
				Match:       &catalog.RouteHTTPMatch{PathPrefix: "/" + svc},
				Destination: &catalog.RouteDestination{Service: g.service(), ServiceSubset: g.subset()}}}}
		}
	case 5:
		delete(s.Intentions, svc)
		if present {
			action := []string{catalog.ActionAllow, catalog.ActionDeny}[g.r.IntN(2)]
			s.Intentions[svc] = []catalog.Intention{{Source: g.service(), Destination: svc, Action: action}}
		}
	}
}

func (g catalogGen) subset() string { return []string{"", "v1", "v2"}[g.r.IntN(3)] }

func (g catalogGen) endpoints(svc string) []catalog.Endpoint {
	var eps []catalog.Endpoint
	for i := range 1 + g.r.IntN(3) {
		e := catalog.Endpoint{ProxyID: fmt.Sprintf("%s-%d", svc, i), Address: "10.0.1.1", Port: 20000 + i,
			Health: catalog.Health(g.r.IntN(3)), WeightPassing: 1, WeightWarning: 1,
			Tags: []string{[]string{"v1", "v2"}[g.r.IntN(2)]}}
		if g.r.IntN(6) == 0 {
			e.Port = 0
		}
		if g.r.IntN(2) == 0 {
			e.VirtualIP = fmt.Sprintf("240.0.0.%d", 1+len(svc))
		}
		eps = append(eps, e)
	}
	return eps
}

func (g catalogGen) resolver(svc string) *catalog.ServiceResolver {
	r := &catalog.ServiceResolver{Name: svc, Subsets: map[string]catalog.ResolverSubset{
		"v1": {Filter: `"v1" in Service.Tags`}, "v2": {Filter: `"v2" in Service.Tags`, OnlyPassing: true}}}
	switch g.r.IntN(4) {
	case 0:
		r.Redirect = &catalog.ResolverTarget{Service: g.service(), ServiceSubset: g.subset()}
	case 1:
		r.DefaultSubset = "v1"
	}
	if g.r.IntN(2) == 0 {
		r.Failover = map[string]catalog.ResolverFailover{"*": {Targets: []catalog.ResolverTarget{{Service: g.service()}}}}
	}
	return r
}

// change returns a copy of s with one random change, sharing every other
// value with s, and says what changed.
func (g catalogGen) change(s *catalog.Snapshot) (*catalog.Snapshot, string) {
	next := cloneSnapshot(s)
	switch n := g.r.IntN(10); {
	case n < 6:
		kind, svc := g.r.IntN(6), g.service()
		g.setEntry(next, kind, svc)
		return next, fmt.Sprintf("value %d of %s", kind, svc)
	case n < 8:
		id := fmt.Sprintf("p%d", g.r.IntN(7))
		if g.r.IntN(5) == 0 {
			delete(next.Proxies, id)
		} else {
			next.Proxies[id] = g.proxy(id)
		}
		return next, "proxy " + id
	case n < 9:
		next.ProxyDefaults = []*catalog.ProxyDefaults{nil, {Protocol: catalog.ProtocolHTTP}}[g.r.IntN(2)]
		next.Mesh = []*catalog.Mesh{nil, {MeshDestinationsOnly: true}}[g.r.IntN(2)]
		return next, "proxy-defaults and mesh"
	default:
		next.ACLDefaultPolicy = []string{"", catalog.ActionAllow, catalog.ActionDeny}[g.r.IntN(3)]
		next.Intentions[catalog.Wildcard] = []catalog.Intention{{Source: catalog.Wildcard, Destination: catalog.Wildcard,
			Action: []string{catalog.ActionAllow, catalog.ActionDeny}[g.r.IntN(2)]}}
		return next, "ACL policy and wildcard intention"
	}
}
