package translate

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/catalog"
)

// TestTranslatorMatchesTranslate checks that a Translator that translated
// one snapshot gives, for the next, exactly what Translate gives: from
// every golden case to every other one, and from every golden case to
// each single-change variant of it and back.
func TestTranslatorMatchesTranslate(t *testing.T) {
	cases := allGoldenCases()
	for _, from := range cases {
		for _, to := range cases {
			x := newCheckedTranslator(t)
			x.Translate(from.snap, from.mesh)
			assertSameTranslation(t, from.name+" then "+to.name, x.Translate(to.snap, to.mesh), to.snap, to.mesh)
		}
	}
	for _, base := range cases {
		for _, v := range variants(base.snap) {
			x := newCheckedTranslator(t)
			x.Translate(base.snap, base.mesh)
			assertSameTranslation(t, base.name+": "+v.name, x.Translate(v.snap, base.mesh), v.snap, base.mesh)
			assertSameTranslation(t, base.name+": "+v.name+", undone", x.Translate(base.snap, base.mesh), base.snap, base.mesh)
		}
		// A roots change (a CA rotation's steps) swaps the bundle secret
		// and translates again only what reads the roots otherwise.
		if len(base.mesh.RootsPEM) > 0 {
			rotated := base.mesh
			rotated.RootsPEM = append(bytes.Clone(base.mesh.RootsPEM), base.mesh.RootsPEM...)
			x := newCheckedTranslator(t)
			x.Translate(base.snap, base.mesh)
			assertSameTranslation(t, base.name+": roots changed", x.Translate(base.snap, rotated), base.snap, rotated)
			assertSameTranslation(t, base.name+": roots changed back", x.Translate(base.snap, base.mesh), base.snap, base.mesh)
		}
	}
}

func assertSameTranslation(t *testing.T, name string, got *Result, snap *catalog.Snapshot, mesh Mesh) {
	t.Helper()
	want := Translate(snap, mesh)
	if sameResult(want, got) {
		return
	}
	t.Errorf("%s: incremental translation differs from a full one (-full +incremental):\n%s", name, cmp.Diff(render(t, want), render(t, got)))
}

// sameResult reports whether two results hold equal resources and
// problems; it is a faster render(a) == render(b).
func sameResult(a, b *Result) bool {
	eq := func(x, y []proto.Message) bool { return slices.EqualFunc(x, y, proto.Equal) }
	errs := func(x []error) []string {
		var out []string
		for _, e := range x {
			out = append(out, e.Error())
		}
		return out
	}
	return maps.EqualFunc(a.Proxies, b.Proxies, func(x, y *Resources) bool { return eq(allResources(x), allResources(y)) }) &&
		maps.EqualFunc(a.Problems, b.Problems, func(x, y []error) bool { return slices.Equal(errs(x), errs(y)) })
}

// variant is a snapshot with one change.
type variant struct {
	name string
	snap *catalog.Snapshot
}

// variants returns, for each service, config entry and proxy of snap, the
// snapshot without it and with it changed, each sharing every other value
// with snap as discovery's snapshots do.
func variants(snap *catalog.Snapshot) []variant {
	var out []variant
	add := func(name string, change func(s *catalog.Snapshot)) {
		s := cloneSnapshot(snap)
		change(s)
		out = append(out, variant{name, s})
	}
	for _, svc := range slices.Sorted(maps.Keys(snap.Endpoints)) {
		add("no instances of "+svc, func(s *catalog.Snapshot) { delete(s.Endpoints, svc) })
		add("first instance of "+svc+" critical", func(s *catalog.Snapshot) {
			eps := slices.Clone(s.Endpoints[svc])
			eps[0].Health = catalog.HealthCritical
			s.Endpoints[svc] = eps
		})
		add("first instance of "+svc+" without port", func(s *catalog.Snapshot) {
			eps := slices.Clone(s.Endpoints[svc])
			eps[0].Port = 0
			s.Endpoints[svc] = eps
		})
		add("an instance of "+svc+" added", func(s *catalog.Snapshot) {
			e := s.Endpoints[svc][0]
			e.ProxyID, e.Address, e.Tags, e.Meta = e.ProxyID+"-new", "10.9.9.9", []string{"v2"}, map[string]string{"version": "2"}
			s.Endpoints[svc] = append(slices.Clone(s.Endpoints[svc]), e)
		})
	}
	for _, svc := range []string{"api", "web", "billing", "db"} {
		if _, ok := snap.Endpoints[svc]; !ok {
			add("instances of "+svc+" appear", func(s *catalog.Snapshot) {
				s.Endpoints[svc] = []catalog.Endpoint{{ProxyID: svc + "-9", Address: "10.8.8.8", Port: 21000, WeightPassing: 1, WeightWarning: 1, VirtualIP: "240.0.0.99"}}
			})
		}
		add("service-defaults of "+svc+" http2", func(s *catalog.Snapshot) {
			s.ServiceDefaults[svc] = &catalog.ServiceDefaults{Name: svc, Protocol: catalog.ProtocolHTTP2}
		})
		add("intention denies web to "+svc, func(s *catalog.Snapshot) {
			s.Intentions[svc] = []catalog.Intention{{Source: "web", Destination: svc, Action: catalog.ActionDeny}}
		})
		add("resolver of "+svc+" with subset and failover", func(s *catalog.Snapshot) {
			s.ServiceResolvers[svc] = &catalog.ServiceResolver{Name: svc, DefaultSubset: "v1",
				Subsets:  map[string]catalog.ResolverSubset{"v1": {Filter: `"v1" in Service.Tags`}},
				Failover: map[string]catalog.ResolverFailover{"*": {Targets: []catalog.ResolverTarget{{Service: "db"}}}}}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(snap.ServiceDefaults)) {
		add("no service-defaults of "+name, func(s *catalog.Snapshot) { delete(s.ServiceDefaults, name) })
	}
	for _, name := range slices.Sorted(maps.Keys(snap.ServiceResolvers)) {
		add("no resolver of "+name, func(s *catalog.Snapshot) { delete(s.ServiceResolvers, name) })
		add("resolver of "+name+" redirected", func(s *catalog.Snapshot) {
			s.ServiceResolvers[name] = &catalog.ServiceResolver{Name: name, Redirect: &catalog.ResolverTarget{Service: "db"}}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(snap.ServiceSplitters)) {
		add("no splitter of "+name, func(s *catalog.Snapshot) { delete(s.ServiceSplitters, name) })
	}
	for _, name := range slices.Sorted(maps.Keys(snap.ServiceRouters)) {
		add("no router of "+name, func(s *catalog.Snapshot) { delete(s.ServiceRouters, name) })
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Intentions)) {
		add("no intentions to "+name, func(s *catalog.Snapshot) { delete(s.Intentions, name) })
	}
	for _, svc := range slices.Sorted(maps.Keys(snap.LinkedInstances)) {
		add("no instances of linked "+svc, func(s *catalog.Snapshot) { delete(s.LinkedInstances, svc) })
		add("an instance of linked "+svc+" added", func(s *catalog.Snapshot) {
			s.LinkedInstances[svc] = append(slices.Clone(s.LinkedInstances[svc]), catalog.Endpoint{ProxyID: svc + "-new", Address: "10.9.9.8", Port: 443, WeightPassing: 1, WeightWarning: 1})
		})
	}
	for _, gw := range slices.Sorted(maps.Keys(snap.TerminatingGateways)) {
		add("nothing linked to "+gw, func(s *catalog.Snapshot) { delete(s.TerminatingGateways, gw) })
		add("db linked to "+gw+" with TLS", func(s *catalog.Snapshot) {
			g := *s.TerminatingGateways[gw]
			g.Services = append(slices.Clone(g.Services), catalog.LinkedService{Name: "zdb", CAFile: "/ca.pem"})
			s.TerminatingGateways[gw] = &g
		})
	}
	add("wildcard intention allows", func(s *catalog.Snapshot) {
		s.Intentions[catalog.Wildcard] = []catalog.Intention{{Source: catalog.Wildcard, Destination: catalog.Wildcard, Action: catalog.ActionAllow}}
	})
	add("proxy-defaults http", func(s *catalog.Snapshot) { s.ProxyDefaults = &catalog.ProxyDefaults{Protocol: catalog.ProtocolHTTP} })
	add("no proxy-defaults", func(s *catalog.Snapshot) { s.ProxyDefaults = nil })
	add("mesh destinations only", func(s *catalog.Snapshot) { s.Mesh = &catalog.Mesh{MeshDestinationsOnly: true} })
	add("mesh TLS", func(s *catalog.Snapshot) {
		s.Mesh = &catalog.Mesh{TLSIncoming: &catalog.TLSParams{MinVersion: "TLSv1_3"},
			TLSOutgoing: &catalog.TLSParams{MaxVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}}}
	})
	add("ACL default deny", func(s *catalog.Snapshot) { s.ACLDefaultPolicy = catalog.ActionDeny })
	add("datacenter dc2", func(s *catalog.Snapshot) { s.Datacenter = "dc2" })
	for _, id := range slices.Sorted(maps.Keys(snap.Proxies)) {
		add("proxy "+id+" gone", func(s *catalog.Snapshot) { delete(s.Proxies, id) })
		add("proxy "+id+" moved", func(s *catalog.Snapshot) {
			p := *s.Proxies[id]
			p.Port++
			s.Proxies[id] = &p
		})
		add("proxy "+id+" re-registered unchanged", func(s *catalog.Snapshot) {
			p := *s.Proxies[id]
			s.Proxies[id] = &p
		})
	}
	return out
}

// cloneSnapshot copies a snapshot's maps, sharing their values.
func cloneSnapshot(s *catalog.Snapshot) *catalog.Snapshot {
	c := *s
	c.Version++
	c.Proxies = cloneMap(s.Proxies)
	c.Endpoints = cloneMap(s.Endpoints)
	c.ServiceDefaults = cloneMap(s.ServiceDefaults)
	c.ServiceResolvers = cloneMap(s.ServiceResolvers)
	c.ServiceSplitters = cloneMap(s.ServiceSplitters)
	c.ServiceRouters = cloneMap(s.ServiceRouters)
	c.Intentions = cloneMap(s.Intentions)
	c.LinkedInstances = cloneMap(s.LinkedInstances)
	c.TerminatingGateways = cloneMap(s.TerminatingGateways)
	return &c
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return maps.Clone(m)
}

// TestTranslatorTranslatesOnlyAffectedProxies checks the cost of a change:
// when one instance of a service changes, only the proxies with an
// upstream to that service get new resources; every other proxy keeps
// the very same *Resources.
func TestTranslatorTranslatesOnlyAffectedProxies(t *testing.T) {
	const services = 30
	snap := ringCatalog(services)
	x := NewTranslator()
	before := x.Translate(snap, testMesh)

	next := cloneSnapshot(snap)
	eps := slices.Clone(next.Endpoints["svc-10"])
	eps[1].Health = catalog.HealthCritical
	next.Endpoints["svc-10"] = eps
	after := x.Translate(next, testMesh)

	var retranslated []string
	for id, r := range after.Proxies {
		if before.Proxies[id] != r {
			retranslated = append(retranslated, id)
		}
	}
	slices.Sort(retranslated)
	// svc-8 and svc-9 have svc-10 as an upstream.
	want := []string{"svc-8-0", "svc-8-1", "svc-9-0", "svc-9-1"}
	if diff := cmp.Diff(want, retranslated); diff != "" {
		t.Errorf("proxies translated again (-want +got):\n%s", diff)
	}
	// Only their load assignments read the instances: the rest of their
	// resources are the very same protos, and only the changed service's
	// load assignment is new.
	for _, id := range want {
		b, a := before.Proxies[id], after.Proxies[id]
		if got := rebuiltTypes(b, a); !slices.Equal(got, []string{"endpoints"}) {
			t.Errorf("%s: an instance change built %v again, want only load assignments", id, got)
		}
		for i, cla := range a.Endpoints {
			if rebuilt := cla != b.Endpoints[i]; rebuilt != strings.HasPrefix(cla.ClusterName, "svc-10.") {
				t.Errorf("%s: load assignment %q rebuilt: %v", id, cla.ClusterName, rebuilt)
			}
		}
	}
	assertSameTranslation(t, "one instance critical", after, next, testMesh)
}

// rebuiltTypes names the types of b whose protos are not all a's, in
// order: what a partial change built again.
func rebuiltTypes(a, b *Resources) []string {
	var out []string
	for _, typ := range []struct {
		name string
		same bool
	}{
		{"listeners", slices.Equal(a.Listeners, b.Listeners)},
		{"clusters", slices.Equal(a.Clusters, b.Clusters)},
		{"endpoints", slices.Equal(a.Endpoints, b.Endpoints)},
		{"routes", slices.Equal(a.Routes, b.Routes)},
		{"secrets", slices.Equal(a.Secrets, b.Secrets)},
	} {
		if !typ.same {
			out = append(out, typ.name)
		}
	}
	return out
}

// ringCatalog is n services × 2 instances, service i calling i+1 and i+2
// (mod n), half of them over HTTP.
func ringCatalog(n int) *catalog.Snapshot {
	s := &catalog.Snapshot{Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{},
		Endpoints: map[string][]catalog.Endpoint{}, ServiceDefaults: map[string]*catalog.ServiceDefaults{}}
	for i := range n {
		svc := fmt.Sprintf("svc-%d", i)
		if i%2 == 0 {
			s.ServiceDefaults[svc] = &catalog.ServiceDefaults{Name: svc, Protocol: catalog.ProtocolHTTP}
		}
		for j := range 2 {
			id := fmt.Sprintf("%s-%d", svc, j)
			s.Proxies[id] = &catalog.Proxy{ID: id, Name: svc + "-sidecar-proxy", Address: "10.0.0.1", Port: 20000 + 2*i + j,
				DestinationName: svc, LocalAddress: "127.0.0.1", LocalPort: 8080, Upstreams: []catalog.Upstream{
					{DestinationName: fmt.Sprintf("svc-%d", (i+1)%n), LocalBindAddress: "127.0.0.1", LocalBindPort: 9001},
					{DestinationName: fmt.Sprintf("svc-%d", (i+2)%n), LocalBindAddress: "127.0.0.1", LocalBindPort: 9002},
				}}
			s.Endpoints[svc] = append(s.Endpoints[svc], catalog.Endpoint{ProxyID: id, Address: "10.0.0.1", Port: 20000 + 2*i + j,
				WeightPassing: 1, WeightWarning: 1})
		}
	}
	return s
}

// TestTranslatorSwapsRoots: a change of the roots alone (each step of a
// CA rotation) hands every proxy the new trust-bundle secret and keeps
// everything else it had, protos and all; a proxy of a service exported
// to a peer, whose public listener carries the roots itself, is
// translated again (TestTranslatorMatchesTranslate checks the contents).
func TestTranslatorSwapsRoots(t *testing.T) {
	snap := ringCatalog(10)
	x := NewTranslator()
	before := x.Translate(snap, testMesh)
	rotated := testMesh
	rotated.RootsPEM = append(bytes.Clone(testMesh.RootsPEM), testMesh.RootsPEM...)
	after := x.Translate(snap, rotated)
	for id, a := range after.Proxies {
		if got := rebuiltTypes(before.Proxies[id], a); !slices.Equal(got, []string{"secrets"}) {
			t.Errorf("%s: a roots change built %v again, want only its trust bundle", id, got)
		}
		if len(a.Secrets) != 1 || string(a.Secrets[0].GetValidationContext().GetTrustedCa().GetInlineBytes()) != string(rotated.RootsPEM) {
			t.Errorf("%s: the trust bundle is not the new roots", id)
		}
	}
	assertSameTranslation(t, "roots changed", after, snap, rotated)
}

// TestTranslatorRebuildsOnlyPublicListeners: a wildcard intention reaches
// every sidecar's public listener (its RBAC) and nothing else, so only
// that listener is built again; the other resources keep their protos.
func TestTranslatorRebuildsOnlyPublicListeners(t *testing.T) {
	snap := ringCatalog(10)
	snap.Intentions = map[string][]catalog.Intention{}
	x := NewTranslator()
	before := x.Translate(snap, testMesh)
	next := cloneSnapshot(snap)
	next.Intentions[catalog.Wildcard] = []catalog.Intention{{Source: catalog.Wildcard, Destination: catalog.Wildcard, Action: catalog.ActionDeny}}
	after := x.Translate(next, testMesh)
	for id, a := range after.Proxies {
		b := before.Proxies[id]
		if got := rebuiltTypes(b, a); !slices.Equal(got, []string{"listeners"}) {
			t.Errorf("%s: an intention change built %v again, want only listeners", id, got)
		}
		for i, l := range a.Listeners {
			if rebuilt := l != b.Listeners[i]; rebuilt != (l.Name == "public_listener") {
				t.Errorf("%s: listener %q built again: %v", id, l.Name, rebuilt)
			}
		}
	}
	assertSameTranslation(t, "wildcard deny", after, next, testMesh)
	assertSameTranslation(t, "wildcard deny removed", x.Translate(snap, testMesh), snap, testMesh)
}

// checkedTranslator is a Translator whose every partial Result is checked
// to list in Changed each proxy whose resources differ, by pointer or by
// presence, from those of the Result before it: what a consumer applying
// only Changed would otherwise miss.
type checkedTranslator struct {
	t    *testing.T
	x    *Translator
	prev *Result
}

func newCheckedTranslator(t *testing.T) *checkedTranslator {
	return &checkedTranslator{t: t, x: NewTranslator()}
}

func (c *checkedTranslator) Translate(snap *catalog.Snapshot, mesh Mesh) *Result {
	c.t.Helper()
	res := c.x.Translate(snap, mesh)
	if c.prev == nil && res.Partial {
		c.t.Errorf("the first Result of a Translator is partial")
	}
	if c.prev != nil && res.Partial {
		listed := map[string]bool{}
		for _, id := range res.Changed {
			listed[id] = true
		}
		for _, ids := range []map[string]*Resources{c.prev.Proxies, res.Proxies} {
			for id := range ids {
				if c.prev.Proxies[id] != res.Proxies[id] && !listed[id] {
					c.t.Errorf("proxy %q: resources changed and not listed in Changed %v", id, res.Changed)
				}
			}
		}
	}
	c.prev = res
	return res
}
