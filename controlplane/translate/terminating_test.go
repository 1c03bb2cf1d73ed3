package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/catalog"
)

// terminatingCases are the golden cases of terminating gateways: the
// gateway (linked services with and without TLS origination, intentions)
// and a sidecar calling a linked service through it.
func terminatingCases() []goldenCase {
	gw := &catalog.Proxy{ID: "tgw-1", Name: "tgw", Node: "node-1", Kind: catalog.KindTerminatingGateway, Address: "127.0.0.1", Port: 8443}
	web := webProxy(catalog.Upstream{DestinationName: "ext", LocalBindAddress: "127.0.0.1", LocalBindPort: 9292})
	return []goldenCase{{
		name: "terminating_gateway",
		snap: &catalog.Snapshot{
			Datacenter: "dc1",
			Proxies:    map[string]*catalog.Proxy{gw.ID: gw, web.ID: web},
			Endpoints: map[string][]catalog.Endpoint{
				// What Consul's health/connect answers for a linked service.
				"ext": {{ProxyID: "tgw-1", Node: "node-1", Address: "127.0.0.1", Port: 8443, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
			},
			TerminatingGateways: map[string]*catalog.TerminatingGateway{"tgw": {Name: "tgw", Services: []catalog.LinkedService{
				{Name: "bad", KeyFile: "/etc/weft/key-without-cert.pem"},
				{Name: "db"},
				{Name: "ext", CAFile: "/etc/weft/ext-ca.pem", SNI: "ext.example.com", CertFile: "/etc/weft/gw.pem", KeyFile: "/etc/weft/gw-key.pem"},
			}}},
			LinkedInstances: map[string][]catalog.Endpoint{
				"ext": {
					{ProxyID: "ext-1", Node: "node-9", Address: "203.0.113.10", Port: 443, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1},
					{ProxyID: "ext-2", Node: "node-9", Address: "203.0.113.11", Port: 443, Health: catalog.HealthCritical, WeightPassing: 1, WeightWarning: 1},
				},
				"db": {{ProxyID: "db-1", Node: "node-8", Address: "10.1.1.1", Port: 5432, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
			},
			Intentions: map[string][]catalog.Intention{
				"ext": {{Source: "web", Destination: "ext", Action: catalog.ActionAllow}},
				"*":   {{Source: "*", Destination: "*", Action: catalog.ActionDeny}},
			},
		},
		mesh: testMesh,
	}, {
		// A transparent sidecar reaches a linked service by its virtual
		// IP, which Consul tags on the gateway, even with
		// MeshDestinationsOnly.
		name: "terminating_gateway_transparent_caller",
		snap: &catalog.Snapshot{
			Datacenter: "dc1",
			Proxies:    map[string]*catalog.Proxy{"web-1-sidecar-proxy": transparentWeb(0)},
			Endpoints: map[string][]catalog.Endpoint{
				"ext": {{ProxyID: "tgw-1", Node: "node-1", Address: "127.0.0.1", Port: 8443, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1, VirtualIP: "240.0.0.7"}},
			},
			Mesh: &catalog.Mesh{MeshDestinationsOnly: true},
		},
		mesh: testMesh,
	}}
}

func TestTerminatingGatewayProblems(t *testing.T) {
	for _, tt := range []struct {
		name string
		gw   *catalog.Proxy
		mesh Mesh
	}{
		{"no port", &catalog.Proxy{ID: "tgw-1", Name: "tgw", Kind: catalog.KindTerminatingGateway}, testMesh},
		{"no trust domain", &catalog.Proxy{ID: "tgw-1", Name: "tgw", Kind: catalog.KindTerminatingGateway, Port: 8443}, Mesh{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Translate(&catalog.Snapshot{Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{tt.gw.ID: tt.gw}}, tt.mesh)
			if n := len(r.Proxies[tt.gw.ID].Listeners); n != 0 {
				t.Errorf("%d listeners, want none", n)
			}
			if len(r.Problems[tt.gw.ID]) != 1 {
				t.Errorf("problems %v, want one saying why", r.Problems[tt.gw.ID])
			}
		})
	}
}

// TestTerminatingGatewayReportsUnregisteredService: a linked service that
// Consul answers has no instance is named (Consul accepts the link: the
// service may be registered later), and the gateway still answers for it,
// so that it forwards once an instance is registered; a service whose
// instances were not fetched yet is not reported.
func TestTerminatingGatewayReportsUnregisteredService(t *testing.T) {
	gw := &catalog.Proxy{ID: "tgw-1", Name: "tgw", Node: "node-1", Kind: catalog.KindTerminatingGateway, Address: "127.0.0.1", Port: 8443}
	snap := &catalog.Snapshot{
		Datacenter: "dc1",
		Proxies:    map[string]*catalog.Proxy{gw.ID: gw},
		TerminatingGateways: map[string]*catalog.TerminatingGateway{"tgw": {Name: "tgw", Services: []catalog.LinkedService{
			{Name: "db"}, {Name: "nosuch"}, {Name: "unfetched"},
		}}},
		LinkedInstances: map[string][]catalog.Endpoint{
			"db":     {{ProxyID: "db-1", Node: "node-8", Address: "10.1.1.1", Port: 5432, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
			"nosuch": nil,
		},
	}
	r := Translate(snap, testMesh)
	var problems []string
	for _, p := range r.Problems[gw.ID] {
		problems = append(problems, p.Error())
	}
	want := []string{`terminating gateway "tgw-1": linked service "nosuch" has no instance registered in Consul (is the name right?); the gateway answers for it and forwards once one is registered`}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	var chains []string
	for _, fc := range r.Proxies[gw.ID].Listeners[0].FilterChains {
		chains = append(chains, fc.Name)
	}
	if diff := cmp.Diff([]string{"db.default.dc1", "nosuch.default.dc1", "unfetched.default.dc1"}, chains); diff != "" {
		t.Errorf("filter chains (-want +got):\n%s", diff)
	}
}
