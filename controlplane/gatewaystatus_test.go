package controlplane

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/catalog"
)

func TestGatewayRoutes(t *testing.T) {
	snap := &catalog.Snapshot{
		Datacenter: "dc2",
		TerminatingGateways: map[string]*catalog.TerminatingGateway{"tgw": {Name: "tgw", Services: []catalog.LinkedService{
			{Name: "db"}, {Name: "ext", CAFile: "/ca.pem", SNI: "ext.example.com"},
		}}},
		LinkedInstances: map[string][]catalog.Endpoint{"ext": {{Health: catalog.HealthPassing}, {Health: catalog.HealthCritical}}},
		Exports:         map[string][]string{"api": {"dc1", "dc3"}, "db": {"dc1"}},
		IngressGateways: map[string]*catalog.IngressGateway{"ingress": {Name: "ingress", Listeners: []catalog.IngressListener{
			{Port: 8080, Protocol: "http", Services: []catalog.IngressService{{Name: "api", Hosts: []string{"api.example.com", "api"}}, {Name: "web"}}},
			{Port: 9000, TLS: &catalog.IngressTLS{Enabled: true}, Services: []catalog.IngressService{{Name: "db"}}},
		}}},
		APIGateways: map[string]*catalog.APIGateway{"gw": {Name: "gw", Listeners: []catalog.APIGatewayListener{
			{Name: "https", Port: 8443, Protocol: "http", TLS: &catalog.GatewayTLS{Certificates: []*catalog.InlineCertificate{{Name: "cert"}}},
				HTTPRoutes: []*catalog.HTTPRoute{{Name: "r", Hostnames: []string{"api.example.com"}, Rules: []catalog.HTTPRouteRule{
					{Services: []catalog.WeightedService{{Name: "v1"}, {Name: "v2"}}},
					{Services: []catalog.WeightedService{{Name: "admin"}}, RequiresJWT: true},
				}}}},
			{Name: "raw", Port: 9000, Protocol: "tcp", TCPRoutes: []*catalog.TCPRoute{{Name: "t", Services: []string{"db"}}}},
			{Name: "idle", Port: 8080},
		}}},
	}
	tests := []struct {
		name string
		p    *catalog.Proxy
		want []string
	}{
		{"mesh gateway", &catalog.Proxy{Kind: catalog.KindMeshGateway}, []string{
			"SNI api.default.default.dc1.external.td.consul → api (exported to peer dc1), TLS passed through",
			"SNI api.default.default.dc3.external.td.consul → api (exported to peer dc3), TLS passed through",
			"SNI db.default.default.dc1.external.td.consul → db (exported to peer dc1), TLS passed through",
		}},
		{"ingress gateway", &catalog.Proxy{Kind: catalog.KindIngressGateway, Name: "ingress"}, []string{
			":8080 http Host api.example.com, api → api",
			":8080 http Host web.ingress.* → web",
			":9000 tcp TLS (weft-ingress-leaf) any connection → db",
		}},
		{"ingress gateway without entry", &catalog.Proxy{Kind: catalog.KindIngressGateway, Name: "other"}, nil},
		{"terminating gateway", &catalog.Proxy{Kind: catalog.KindTerminatingGateway, Name: "tgw"}, []string{
			"SNI db.default.dc2 → db, mTLS as db, 0 of 0 instances healthy, plaintext",
			"SNI ext.default.dc2 → ext, mTLS as ext, 1 of 2 instances healthy, TLS (CA /ca.pem, SNI ext.example.com)",
		}},
		{"API gateway", &catalog.Proxy{Kind: catalog.KindAPIGateway, Name: "gw"}, []string{
			":8443 http TLS (cert) listener https: http-route r, Host api.example.com → v1+v2; refused (needs a JWT)",
			":9000 tcp listener raw: tcp-route t → db",
			":8080 http listener idle: no route bound",
		}},
		{"sidecar", &catalog.Proxy{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, gatewayRoutes(snap, tt.p, "td.consul")); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}
