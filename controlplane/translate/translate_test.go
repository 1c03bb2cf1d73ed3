package translate

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/catalog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func webProxy(upstreams ...catalog.Upstream) *catalog.Proxy {
	return &catalog.Proxy{
		ID: "web-1-sidecar-proxy", Name: "web-sidecar-proxy", Node: "node-1",
		Address: "127.0.0.1", Port: 21000,
		DestinationName: "web", DestinationID: "web-1",
		LocalAddress: "127.0.0.1", LocalPort: 8080,
		Upstreams: upstreams,
	}
}

var testMesh = Mesh{TrustDomain: "weft.local", RootsPEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}

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

func TestTranslateGolden(t *testing.T) {
	tests := []struct {
		name string
		snap *catalog.Snapshot
		mesh Mesh
	}{
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, Translate(tt.snap, tt.mesh))
			path := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("translation of %s differs from %s (-want +got):\n%s", tt.name, path, diff)
			}
		})
	}
}

// render prints a result as stable, indented JSON: protojson's own output
// is deliberately unstable, so it is re-encoded through encoding/json.
func render(t *testing.T, res *Result) string {
	t.Helper()
	out := map[string]any{}
	for id, r := range res.Proxies {
		out[id] = map[string]any{
			"listeners": protosJSON(t, r.Listeners),
			"clusters":  protosJSON(t, r.Clusters),
			"endpoints": protosJSON(t, r.Endpoints),
			"routes":    protosJSON(t, r.Routes),
			"secrets":   protosJSON(t, r.Secrets),
		}
	}
	problems := map[string][]string{}
	for id, errs := range res.Problems {
		for _, e := range errs {
			problems[id] = append(problems[id], e.Error())
		}
	}
	out["problems"] = problems
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func protosJSON[T proto.Message](t *testing.T, ms []T) []any {
	t.Helper()
	out := []any{}
	for _, m := range ms {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestTranslateValid checks every resource passes Envoy's own validation.
func TestTranslateValid(t *testing.T) {
	snap := &catalog.Snapshot{
		Datacenter: "dc1",
		Proxies: map[string]*catalog.Proxy{
			"web-1-sidecar-proxy": webProxy(apiUpstream(9191)),
			"web-2-sidecar-proxy": webProxy(apiUpstream(9192)),
		},
		Endpoints:       apiEndpoints(),
		ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
	}
	for id, r := range Translate(snap, testMesh).Proxies {
		for _, m := range allResources(r) {
			if err := m.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
				t.Errorf("proxy %s: %v", id, err)
			}
		}
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

func allResources(r *Resources) []proto.Message {
	var out []proto.Message
	for _, m := range r.Listeners {
		out = append(out, m)
	}
	for _, m := range r.Clusters {
		out = append(out, m)
	}
	for _, m := range r.Endpoints {
		out = append(out, m)
	}
	for _, m := range r.Routes {
		out = append(out, m)
	}
	for _, m := range r.Secrets {
		out = append(out, m)
	}
	return out
}
