package translate

import (
	"slices"
	"testing"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/catalog/catalogtest"
)

// apiGatewayCases are the golden cases of API gateways. my-gateway is
// what discovery joins from Consul's documented JSON
// (discovery.TestAPIGatewayFromDocumentedJSON): an HTTPS listener for
// *.example.com, an HTTP listener, both serving an http-route with a
// prefix rewrite, a weighted split and header changes, and a TCP listener
// with a tcp-route. bad-gateway has what must be reported: a port used
// twice, a rule to a tcp service, a route whose hostnames its listener
// does not admit, a certificate that does not match its key, a TCP
// listener with two routes.
func apiGatewayCases() []goldenCase {
	cert := &catalog.InlineCertificate{Name: "my-certificate", Certificate: string(mustRead("testdata/gateway.crt")), PrivateKey: string(mustRead("testdata/gateway.key"))}
	route := catalogtest.DocumentedHTTPRoute()
	mine := &catalog.APIGateway{
		Name: "my-gateway",
		Listeners: []catalog.APIGatewayListener{
			{Name: "my-https-listener", Hostname: "*.example.com", Port: 8443, Protocol: "http", HTTPRoutes: []*catalog.HTTPRoute{route},
				TLS: &catalog.GatewayTLS{MinVersion: "TLSv1_2", Certificates: []*catalog.InlineCertificate{cert},
					CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"}}},
			{Name: "my-http-listener", Port: 8080, Protocol: "http", HTTPRoutes: []*catalog.HTTPRoute{route}},
			{Name: "my-tcp-listener", Port: 9000, Protocol: "tcp", TCPRoutes: []*catalog.TCPRoute{{Name: "my-tcp-route", Services: []string{"db"}}}},
		},
		Unsupported: []string{`http-route "my-http-route": Rules[2].Filters.JWT (enforced as a refusal: Weft cannot verify JWTs)`},
	}
	otherKey := &catalog.InlineCertificate{Name: "mismatched", Certificate: cert.Certificate, PrivateKey: string(mustRead("testdata/gateway-other.key"))}
	bad := &catalog.APIGateway{
		Name: "bad-gateway",
		Listeners: []catalog.APIGatewayListener{
			{Name: "a", Port: 8080, Protocol: "http", HTTPRoutes: []*catalog.HTTPRoute{
				{Name: "to-tcp", Rules: []catalog.HTTPRouteRule{{Services: []catalog.WeightedService{{Name: "db", Weight: 1}}}}},
			}},
			{Name: "b", Port: 8080, Protocol: "http"},
			{Name: "c", Port: 8081, Protocol: "http", Hostname: "shop.example.org", HTTPRoutes: []*catalog.HTTPRoute{route}},
			{Name: "d", Port: 8443, Protocol: "http", TLS: &catalog.GatewayTLS{Certificates: []*catalog.InlineCertificate{otherKey}}},
			{Name: "f", Port: 8444, Protocol: "http", TLS: &catalog.GatewayTLS{Certificates: []*catalog.InlineCertificate{cert}, CipherSuites: []string{"TLS_RSA_WITH_RC4_128_SHA"}}},
			{Name: "e", Port: 9000, Protocol: "tcp", TCPRoutes: []*catalog.TCPRoute{{Name: "one", Services: []string{"db"}}, {Name: "two", Services: []string{"db"}}}},
		},
		Problems: []string{`listener "x" names inline-certificate "gone", which does not exist`},
	}
	passing := func(id, addr string, port int) catalog.Endpoint {
		return catalog.Endpoint{ProxyID: id, Node: "node-1", Address: addr, Port: port, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}
	}
	return []goldenCase{{
		name: "api_gateway",
		snap: &catalog.Snapshot{
			Datacenter: "dc1",
			Proxies: map[string]*catalog.Proxy{
				"my-gateway-1":  {ID: "my-gateway-1", Name: "my-gateway", Kind: catalog.KindAPIGateway, Address: "127.0.0.1", Port: 8443},
				"bad-gateway-1": {ID: "bad-gateway-1", Name: "bad-gateway", Kind: catalog.KindAPIGateway, Address: "127.0.0.1", Port: 8080},
			},
			Endpoints: map[string][]catalog.Endpoint{
				"v1-service": {passing("v1-service-1-sidecar-proxy", "127.0.0.11", 21011)},
				"v2-service": {passing("v2-service-1-sidecar-proxy", "127.0.0.12", 21012)},
				"v2-canary":  {passing("v2-canary-1-sidecar-proxy", "127.0.0.13", 21013)},
				"db":         {passing("db-1-sidecar-proxy", "127.0.0.14", 21014)},
			},
			ServiceDefaults: map[string]*catalog.ServiceDefaults{
				"v1-service": {Name: "v1-service", Protocol: catalog.ProtocolHTTP},
				"v2-service": {Name: "v2-service", Protocol: catalog.ProtocolHTTP},
				"v2-canary":  {Name: "v2-canary", Protocol: catalog.ProtocolHTTP},
			},
			APIGateways: map[string]*catalog.APIGateway{"my-gateway": mine, "bad-gateway": bad},
		},
		mesh: testMesh,
	}}
}

// TestAPIGatewayPrecedence: routes are ordered as the Gateway API orders
// them, whatever order the rules come in.
func TestAPIGatewayPrecedence(t *testing.T) {
	ms := []*catalog.RouteHTTPMatch{
		{PathPrefix: "/"},
		{PathRegex: "/v[0-9]+/.*"},
		{PathPrefix: "/v1/users"},
		{PathPrefix: "/v1", Headers: []catalog.RouteHeaderMatch{{Name: "x", Present: true}}},
		{PathPrefix: "/v1"},
		{PathExact: "/v1/users/me"},
		{PathPrefix: "/v1", Methods: []string{"GET"}},
	}
	want := []*catalog.RouteHTTPMatch{ms[5], ms[2], ms[6], ms[3], ms[4], ms[0], ms[1]}
	got := append([]*catalog.RouteHTTPMatch(nil), ms...)
	slices.SortStableFunc(got, comparePrecedence)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %d: %+v, want %+v", i, *got[i], *want[i])
		}
	}
}
