package translate

import (
	"os"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

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

// TestProxiesShareEqualUpstreamListeners: proxies with the same upstream
// (destination, address and port) hold one listener proto for it, and
// proxies whose applications listen alike one local_app cluster; when
// HTTP is traced, the listener names the calling service in its spans,
// so proxies of different services get their own.
func TestProxiesShareEqualUpstreamListeners(t *testing.T) {
	traced := Mesh{TrustDomain: testMesh.TrustDomain, RootsPEM: testMesh.RootsPEM,
		Tracing: &Tracing{CollectorHost: "127.0.0.1", CollectorPort: 15010, SamplingPercent: 1}}
	tests := []struct {
		name       string
		mesh       Mesh
		b          string // service of proxy b; a is web
		bPort      int    // b's local_bind_port for api; a's is 9191
		wantShared bool
	}{
		{"same service and port", testMesh, "web", 9191, true},
		{"same service and port, traced", traced, "web", 9191, true},
		{"other service, same port", testMesh, "admin", 9191, true},
		{"other service, same port, traced", traced, "admin", 9191, false},
		{"same service, other port", testMesh, "web", 9192, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := webProxy(apiUpstream(9191)), webProxy(apiUpstream(tt.bPort))
			b.ID, b.DestinationName = "b-sidecar-proxy", tt.b
			snap := &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{a.ID: a, b.ID: b},
				Endpoints:       apiEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
			}
			res := Translate(snap, tt.mesh)
			la, lb := upstreamListener(t, res.Proxies[a.ID]), upstreamListener(t, res.Proxies[b.ID])
			if shared := la == lb; shared != tt.wantShared {
				t.Fatalf("upstream listeners shared: %v, want %v", shared, tt.wantShared)
			}
			if !tt.wantShared && proto.Equal(la, lb) {
				t.Fatal("the upstream listeners are equal but were built twice")
			}
			if tt.mesh.Tracing != nil {
				for _, c := range []struct {
					l    *listenerv3.Listener
					want string
				}{{la, "web"}, {lb, tt.b}} {
					if got := tracedService(t, c.l); got != c.want {
						t.Errorf("listener %s traces as %q, want %q", c.l.Name, got, c.want)
					}
				}
			}
			if ca, cb := cluster(t, res.Proxies[a.ID], LocalAppCluster), cluster(t, res.Proxies[b.ID], LocalAppCluster); ca != cb {
				t.Error("the proxies' applications listen alike but their local_app clusters were built twice")
			}
		})
	}
}

// upstreamListener is r's one listener that is not the public listener.
func upstreamListener(t *testing.T, r *Resources) *listenerv3.Listener {
	t.Helper()
	for _, l := range r.Listeners {
		if l.Name != PublicListenerName {
			return l
		}
	}
	t.Fatal("no upstream listener")
	return nil
}

// cluster is r's cluster of that name.
func cluster(t *testing.T, r *Resources, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range r.Clusters {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cluster %s", name)
	return nil
}

// tracedService is the service name l's HTTP connection manager gives
// its spans.
func tracedService(t *testing.T, l *listenerv3.Listener) string {
	t.Helper()
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	otel := &tracev3.OpenTelemetryConfig{}
	if err := hcm.GetTracing().GetProvider().GetTypedConfig().UnmarshalTo(otel); err != nil {
		t.Fatal(err)
	}
	return otel.ServiceName
}

// TestInstancesSharePublicFilters: the public listeners of a service's
// instances differ by address and port but share their filters (RBAC of
// the service's intentions, connection manager), and every public
// listener without peers shares one transport socket; another service,
// with intentions of its own, has filters of its own.
func TestInstancesSharePublicFilters(t *testing.T) {
	a, b, c := webProxy(), webProxy(), webProxy()
	b.ID, b.Port = "web-2-sidecar-proxy", 21010
	c.ID, c.DestinationName, c.Port = "admin-1-sidecar-proxy", "admin", 21020
	snap := &catalog.Snapshot{
		Datacenter:      "dc1",
		Proxies:         map[string]*catalog.Proxy{a.ID: a, b.ID: b, c.ID: c},
		ServiceDefaults: map[string]*catalog.ServiceDefaults{"web": {Name: "web", Protocol: "http"}, "admin": {Name: "admin", Protocol: "http"}},
		Intentions: map[string][]catalog.Intention{"web": {
			{Source: "api", Destination: "web", Action: catalog.ActionDeny, Precedence: 9},
		}},
	}
	res := Translate(snap, testMesh)
	public := func(id string) *listenerv3.Listener {
		for _, l := range res.Proxies[id].Listeners {
			if l.Name == PublicListenerName {
				return l
			}
		}
		t.Fatalf("%s has no public listener", id)
		return nil
	}
	la, lb, lc := public(a.ID), public(b.ID), public(c.ID)
	if la == lb || la.Address.GetSocketAddress().GetPortValue() == lb.Address.GetSocketAddress().GetPortValue() {
		t.Fatal("the instances' public listeners are one proto, or on one port")
	}
	if la.FilterChains[0].Filters[0] != lb.FilterChains[0].Filters[0] {
		t.Error("web's instances built their public listener's filters twice")
	}
	if la.FilterChains[0].Filters[0] == lc.FilterChains[0].Filters[0] || proto.Equal(la.FilterChains[0].Filters[0], lc.FilterChains[0].Filters[0]) {
		t.Error("admin's public listener has web's filters, though only web has intentions")
	}
	if la.FilterChains[0].TransportSocket != lc.FilterChains[0].TransportSocket {
		t.Error("the public listeners' transport sockets were built twice")
	}
}

// TestSharedPublicFiltersKeepProblems: each instance of a TCP service
// with L7 intentions reports the problem, though their filters are built
// once.
func TestSharedPublicFiltersKeepProblems(t *testing.T) {
	a, b := webProxy(), webProxy()
	b.ID, b.Port = "web-2-sidecar-proxy", 21010
	snap := &catalog.Snapshot{
		Datacenter: "dc1",
		Proxies:    map[string]*catalog.Proxy{a.ID: a, b.ID: b},
		Intentions: map[string][]catalog.Intention{"web": {
			{Source: "lb", Destination: "web", Permissions: []catalog.IntentionPermission{
				{Action: "deny", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/admin"}}}},
		}},
	}
	res := Translate(snap, testMesh)
	for _, id := range []string{a.ID, b.ID} {
		found := false
		for _, err := range res.Problems[id] {
			found = found || strings.Contains(err.Error(), "L7 intentions need protocol http")
		}
		if !found {
			t.Errorf("%s: problems %v, want the L7 intentions' on a TCP service", id, res.Problems[id])
		}
	}
}
