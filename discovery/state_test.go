package discovery

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/catalog"
)

func TestStateBuild(t *testing.T) {
	api1 := &catalog.Proxy{ID: "api-1-sidecar-proxy", Node: "node-1", DestinationName: "api"}
	api1Other := &catalog.Proxy{ID: "api-1-sidecar-proxy", Node: "node-2", DestinationName: "api"}
	web1 := &catalog.Proxy{ID: "web-1-sidecar-proxy", Node: "node-1", DestinationName: "web"}
	apiEndpoints := []catalog.Endpoint{{ProxyID: "api-1-sidecar-proxy", Node: "node-1"}, {ProxyID: "api-1-sidecar-proxy", Node: "node-2"}}
	webEndpoints := []catalog.Endpoint{{ProxyID: "web-1-sidecar-proxy", Node: "node-1"}}
	s := newState()
	s.setService("api", serviceResult{proxies: []*catalog.Proxy{api1, api1Other}, endpoints: apiEndpoints})
	s.setService("web", serviceResult{proxies: []*catalog.Proxy{web1}, endpoints: webEndpoints})
	s.setService("db", serviceResult{})
	s.serviceDefaults = map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}}
	s.proxyDefaults = &catalog.ProxyDefaults{Protocol: "tcp"}
	s.chain.resolvers = map[string]*catalog.ServiceResolver{"api": {Name: "api", DefaultSubset: "v1"}}
	s.chain.routers = map[string]*catalog.ServiceRouter{"api": {Name: "api"}}

	got := s.build("dc1", 7)
	want := &catalog.Snapshot{
		Version:    7,
		Datacenter: "dc1",
		// A duplicate service ID keeps the first by node name.
		Proxies:         map[string]*catalog.Proxy{"api-1-sidecar-proxy": api1, "web-1-sidecar-proxy": web1},
		Endpoints:       map[string][]catalog.Endpoint{"api": apiEndpoints, "web": webEndpoints},
		ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
		ProxyDefaults:   &catalog.ProxyDefaults{Protocol: "tcp"},
		// Kinds whose watch has not answered are empty, never nil.
		ServiceResolvers: map[string]*catalog.ServiceResolver{"api": {Name: "api", DefaultSubset: "v1"}},
		ServiceSplitters: map[string]*catalog.ServiceSplitter{},
		ServiceRouters:   map[string]*catalog.ServiceRouter{"api": {Name: "api"}},
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("build (-want +got):\n%s", diff)
	}

	// The snapshot's maps are its own: changing the state later does not
	// change a published snapshot.
	s.setService("web", serviceResult{})
	s.serviceDefaults["db"] = &catalog.ServiceDefaults{Name: "db"}
	s.chain.resolvers["db"] = &catalog.ServiceResolver{Name: "db"}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("published snapshot changed with the state (-want +got):\n%s", diff)
	}
}

func TestStateBuildBeforeServiceDefaults(t *testing.T) {
	got := newState().build("dc1", 1)
	if got.ServiceDefaults == nil || got.Proxies == nil || got.Endpoints == nil ||
		got.ServiceResolvers == nil || got.ServiceSplitters == nil || got.ServiceRouters == nil {
		t.Errorf("build of an empty state has nil maps: %+v", got)
	}
}

func TestSameContent(t *testing.T) {
	base := func() *catalog.Snapshot {
		s := newState()
		s.setService("api", serviceResult{
			proxies:   []*catalog.Proxy{{ID: "api-1-sidecar-proxy"}},
			endpoints: []catalog.Endpoint{{ProxyID: "api-1-sidecar-proxy", Health: catalog.HealthPassing}},
		})
		return s.build("dc1", 1)
	}
	tests := []struct {
		name   string
		modify func(*catalog.Snapshot)
		want   bool
	}{
		{"identical", func(*catalog.Snapshot) {}, true},
		{"only the version differs", func(s *catalog.Snapshot) { s.Version = 9 }, true},
		{"health differs", func(s *catalog.Snapshot) {
			s.Endpoints["api"] = []catalog.Endpoint{{ProxyID: "api-1-sidecar-proxy", Health: catalog.HealthCritical}}
		}, false},
		{"proxy defaults differ", func(s *catalog.Snapshot) { s.ProxyDefaults = &catalog.ProxyDefaults{} }, false},
		{"an equal proxy re-registered", func(s *catalog.Snapshot) {
			p := *s.Proxies["api-1-sidecar-proxy"]
			s.Proxies["api-1-sidecar-proxy"] = &p
		}, true},
		{"an equal instance list re-read", func(s *catalog.Snapshot) {
			s.Endpoints["api"] = []catalog.Endpoint{{ProxyID: "api-1-sidecar-proxy", Health: catalog.HealthPassing}}
		}, true},
		{"a proxy moved", func(s *catalog.Snapshot) {
			p := *s.Proxies["api-1-sidecar-proxy"]
			p.Port++
			s.Proxies["api-1-sidecar-proxy"] = &p
		}, false},
		{"a proxy added", func(s *catalog.Snapshot) { s.Proxies["web-1"] = &catalog.Proxy{ID: "web-1"} }, false},
		{"a service without instances listed", func(s *catalog.Snapshot) { s.Endpoints["web"] = nil }, false},
		{"datacenter differs", func(s *catalog.Snapshot) { s.Datacenter = "dc2" }, false},
		{"service-defaults differ", func(s *catalog.Snapshot) {
			s.ServiceDefaults["api"] = &catalog.ServiceDefaults{Name: "api", Protocol: "http"}
		}, false},
		{"resolvers differ", func(s *catalog.Snapshot) { s.ServiceResolvers["api"] = &catalog.ServiceResolver{Name: "api"} }, false},
		{"splitters differ", func(s *catalog.Snapshot) { s.ServiceSplitters["api"] = &catalog.ServiceSplitter{Name: "api"} }, false},
		{"routers differ", func(s *catalog.Snapshot) { s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api"} }, false},
		{"intentions differ", func(s *catalog.Snapshot) {
			s.Intentions = map[string][]catalog.Intention{"api": {{Source: "web", Destination: "api", Action: catalog.ActionDeny}}}
		}, false},
		{"mesh entry differs", func(s *catalog.Snapshot) { s.Mesh = &catalog.Mesh{MeshDestinationsOnly: true} }, false},
		{"ACL default policy differs", func(s *catalog.Snapshot) { s.ACLDefaultPolicy = catalog.ActionDeny }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.modify(b)
			if got := sameContent(a, b); got != tt.want {
				t.Errorf("sameContent = %v, want %v", got, tt.want)
			}
		})
	}
	if sameContent(nil, base()) || !sameContent(nil, nil) {
		t.Error("sameContent mishandles nil")
	}
}

// TestStateKeepsProxiesInStep applies random service answers and removals,
// sidecar IDs shared between services and nodes included, and checks after
// each that the snapshot's Proxies and Endpoints are what walking every
// service, sorted, gives: the first sidecar of an ID by service name, then
// node name.
func TestStateKeepsProxiesInStep(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"api", "db", "web", "auth"}
	s := newState()
	for step := range 400 {
		name := names[r.IntN(len(names))]
		if r.IntN(5) == 0 {
			s.deleteService(name)
		} else {
			var res serviceResult
			for range r.IntN(4) {
				id, node := fmt.Sprintf("sidecar-%d", r.IntN(4)), fmt.Sprintf("node-%d", r.IntN(3))
				res.proxies = append(res.proxies, &catalog.Proxy{ID: id, Node: node, DestinationName: name})
				res.endpoints = append(res.endpoints, catalog.Endpoint{ProxyID: id, Node: node})
			}
			slices.SortFunc(res.proxies, func(a, b *catalog.Proxy) int {
				return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Node, b.Node))
			})
			s.setService(name, res)
		}
		got := s.build("dc1", 1)
		wantProxies, wantEndpoints := map[string]*catalog.Proxy{}, map[string][]catalog.Endpoint{}
		for _, svc := range slices.Sorted(maps.Keys(s.services)) {
			for _, p := range s.services[svc].proxies {
				if _, dup := wantProxies[p.ID]; !dup {
					wantProxies[p.ID] = p
				}
			}
			if eps := s.services[svc].endpoints; len(eps) > 0 {
				wantEndpoints[svc] = eps
			}
		}
		if !maps.Equal(wantProxies, got.Proxies) {
			t.Fatalf("step %d: Proxies = %v, want %v", step, got.Proxies, wantProxies)
		}
		if diff := gocmp.Diff(wantEndpoints, got.Endpoints); diff != "" {
			t.Fatalf("step %d: Endpoints (-want +got):\n%s", step, diff)
		}
	}
}
