package translate

import (
	"os"
	"testing"

	"github.com/weft-mesh/weft/catalog"
)

func webProxy(upstreams ...catalog.Upstream) *catalog.Proxy {
	return &catalog.Proxy{
		ID: "web-1-sidecar-proxy", Name: "web-sidecar-proxy", Node: "node-1",
		Address: "127.0.0.1", Port: 21000,
		DestinationName: "web", DestinationID: "web-1",
		LocalAddress: "127.0.0.1", LocalPort: 8080,
		Upstreams: upstreams,
	}
}

// testMesh uses a fixed real root (testdata/root.pem), so goldens are
// stable and every consumer can parse the bundle.
var testMesh = Mesh{TrustDomain: "weft.local", RootsPEM: mustRead("testdata/root.pem")}

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return b
}

func apiUpstream(port int) catalog.Upstream {
	return catalog.Upstream{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: port}
}

func apiEndpoints() map[string][]catalog.Endpoint {
	return map[string][]catalog.Endpoint{"api": {
		{ProxyID: "api-1-sidecar-proxy", Node: "node-1", Address: "127.0.0.1", Port: 21001, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1},
		{ProxyID: "api-2-sidecar-proxy", Node: "node-1", Address: "127.0.0.2", Port: 21002, Health: catalog.HealthCritical, WeightPassing: 1, WeightWarning: 1},
		{ProxyID: "api-3-sidecar-proxy", Node: "node-2", Address: "127.0.0.3", Port: 21003, Health: catalog.HealthWarning, WeightPassing: 10, WeightWarning: 2},
		{ProxyID: "api-4-sidecar-proxy", Node: "node-2", Address: "127.0.0.4", Port: 21004, Health: catalog.HealthWarning, WeightPassing: 3, WeightWarning: 0},
	}}
}

// baseCases are the golden cases of L4/L7 proxying and mTLS.
func baseCases() []goldenCase {
	return []goldenCase{
		{
			name: "tcp_upstream",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies:    map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(apiUpstream(9191))},
				Endpoints:  apiEndpoints(),
			},
		},
		{
			name: "http_from_service_defaults",
			snap: &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(apiUpstream(9191))},
				Endpoints:       apiEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}, "web": {Name: "web", Protocol: "http"}},
			},
		},
		{
			name: "proxy_defaults_http_with_tcp_override",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies: map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(
					catalog.Upstream{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191, Protocol: "tcp"},
					catalog.Upstream{DestinationName: "db", LocalBindAddress: "127.0.0.1", LocalBindPort: 5432},
				)},
				Endpoints:     apiEndpoints(),
				ProxyDefaults: &catalog.ProxyDefaults{Protocol: "http"},
			},
		},
		{
			name: "other_datacenter_and_bad_upstream",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies: map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(
					catalog.Upstream{DestinationName: "api", Datacenter: "dc2", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191},
					catalog.Upstream{DestinationName: "db", LocalBindAddress: "127.0.0.1"},
				)},
				Endpoints: apiEndpoints(),
			},
		},
		{
			name: "mtls_default_deny_l4_intentions",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies:    map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(apiUpstream(9191))},
				Endpoints:  apiEndpoints(),
				Intentions: map[string][]catalog.Intention{
					"web": {{Source: "lb", Destination: "web", Action: "allow"}, {Source: "batch", Destination: "web", Action: "deny"}},
					"*":   {{Source: "*", Destination: "*", Action: "deny"}, {Source: "ops", Destination: "*", Action: "allow"}},
				},
				ACLDefaultPolicy: "deny",
			},
			mesh: testMesh,
		},
		{
			name: "mtls_default_allow_l7_intentions",
			snap: &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(apiUpstream(9191))},
				Endpoints:       apiEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"web": {Name: "web", Protocol: "http"}, "api": {Name: "api", Protocol: "http"}},
				Intentions: map[string][]catalog.Intention{"web": {
					{Source: "lb", Destination: "web", Permissions: []catalog.IntentionPermission{
						{Action: "deny", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/admin"}},
						{Action: "allow", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/", Methods: []string{"GET", "head"},
							Headers: []catalog.IntentionHTTPHeader{{Name: "X-Env", Exact: "prod"}, {Name: "x-debug", Present: true, Invert: true}}}},
					}},
					{Source: "*", Destination: "web", Action: "deny"},
				}},
			},
			mesh: Mesh{TrustDomain: "weft.local", RootsPEM: testMesh.RootsPEM, DefaultPolicy: "allow"},
		},
		{
			name: "mtls_l7_intentions_on_tcp_service_fail_closed",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies:    map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy()},
				Intentions: map[string][]catalog.Intention{"web": {
					{Source: "lb", Destination: "web", Permissions: []catalog.IntentionPermission{{Action: "allow", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/"}}}},
				}},
			},
			mesh: testMesh,
		},
		{
			name: "tracing_to_collector",
			snap: &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(apiUpstream(9191))},
				Endpoints:       apiEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"web": {Name: "web", Protocol: "http"}, "api": {Name: "api", Protocol: "grpc"}},
			},
			mesh: Mesh{TrustDomain: "weft.local", RootsPEM: testMesh.RootsPEM,
				Tracing: &Tracing{CollectorHost: "127.0.0.1", CollectorPort: 15010, SamplingPercent: 25}},
		},
	}
}

// TestTranslateSharesServiceResources checks a destination's cluster, load
// assignment and routes are built once and shared between proxies.
func TestTranslateSharesServiceResources(t *testing.T) {
	a, b := webProxy(apiUpstream(9191)), webProxy(apiUpstream(9192))
	b.ID = "web-2-sidecar-proxy"
	snap := &catalog.Snapshot{
		Datacenter:      "dc1",
		Proxies:         map[string]*catalog.Proxy{a.ID: a, b.ID: b},
		Endpoints:       apiEndpoints(),
		ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
	}
	res := Translate(snap, testMesh)
	ra, rb := res.Proxies[a.ID], res.Proxies[b.ID]
	if ra.Endpoints[0] != rb.Endpoints[0] || ra.Routes[0] != rb.Routes[0] {
		t.Error("api's load assignment and routes were built twice; want one shared proto")
	}
	if ra.Listeners[0] == rb.Listeners[0] {
		t.Error("listeners are per proxy and must not be shared")
	}
}
