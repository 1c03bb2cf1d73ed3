package translate

import (
	"testing"

	"github.com/weft-mesh/weft/catalog"
)

// ingressCases are the golden cases of ingress gateways.
func ingressCases() []goldenCase {
	gw := &catalog.Proxy{ID: "ingress-1", Name: "ingress", Node: "node-1", Kind: catalog.KindIngressGateway, Address: "127.0.0.1", Port: 8443}
	eps := apiEndpoints()
	eps["web"] = []catalog.Endpoint{{ProxyID: "web-1-sidecar-proxy", Node: "node-1", Address: "127.0.0.1", Port: 21000, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}}
	eps["db"] = eps["web"]
	return []goldenCase{{
		name: "ingress_gateway",
		snap: &catalog.Snapshot{
			Datacenter: "dc1",
			Proxies:    map[string]*catalog.Proxy{gw.ID: gw},
			Endpoints:  eps,
			ServiceDefaults: map[string]*catalog.ServiceDefaults{
				"api": {Name: "api", Protocol: "http"}, "web": {Name: "web", Protocol: "http"},
			},
			ServiceRouters: map[string]*catalog.ServiceRouter{"web": {Name: "web", Routes: []catalog.ServiceRoute{{
				Match:       &catalog.RouteHTTPMatch{PathPrefix: "/api"},
				Destination: &catalog.RouteDestination{Service: "api"},
			}}}},
			IngressGateways: map[string]*catalog.IngressGateway{"ingress": {Name: "ingress", Listeners: []catalog.IngressListener{
				{Port: 8080, Protocol: "http", Services: []catalog.IngressService{
					{Name: "api", Hosts: []string{"api.example.com"}},
					{Name: "web", Hosts: []string{"web.example.com", "api.example.com"}},
					{Name: "*"},
				}},
				{Port: 9000, Protocol: "tcp", Services: []catalog.IngressService{{Name: "db"}}},
				{Port: 9000, Protocol: "tcp", Services: []catalog.IngressService{{Name: "db"}}},
			}}},
		},
		mesh: testMesh,
	}}
}

func TestIngressGatewayWithoutEntry(t *testing.T) {
	gw := &catalog.Proxy{ID: "ingress-1", Name: "ingress", Kind: catalog.KindIngressGateway, Port: 8443}
	r := Translate(&catalog.Snapshot{Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{gw.ID: gw}}, testMesh)
	if n := len(r.Proxies[gw.ID].Listeners); n != 0 {
		t.Errorf("%d listeners without an ingress-gateway entry, want none", n)
	}
	if len(r.Problems[gw.ID]) != 1 {
		t.Errorf("problems %v, want one naming the missing entry", r.Problems[gw.ID])
	}
}
