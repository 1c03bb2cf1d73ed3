package translate

import (
	"slices"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/weft-mesh/weft/catalog"
)

// transparentWeb is web-1's sidecar in transparent mode.
func transparentWeb(outboundPort int) *catalog.Proxy {
	p := webProxy()
	p.Mode, p.OutboundListenerPort = catalog.ModeTransparent, outboundPort
	return p
}

// meshEndpoints are api (two instances), db and web, each service with
// its virtual IP.
func meshEndpoints() map[string][]catalog.Endpoint {
	ep := func(id, addr, vip string) catalog.Endpoint {
		return catalog.Endpoint{ProxyID: id, Node: "node-1", Address: addr, Port: 21000, Health: catalog.HealthPassing,
			WeightPassing: 1, WeightWarning: 1, VirtualIP: vip}
	}
	return map[string][]catalog.Endpoint{
		"api":   {ep("api-1-sidecar-proxy", "10.0.0.2", "240.0.0.2"), ep("api-2-sidecar-proxy", "10.0.0.3", "240.0.0.2")},
		"db":    {ep("db-1-sidecar-proxy", "10.0.0.4", "240.0.0.3")},
		"web":   {ep("web-1-sidecar-proxy", "127.0.0.1", "240.0.0.1")},
		"novip": {ep("novip-1-sidecar-proxy", "10.0.0.5", "")},
	}
}

// transparentCases are the golden cases of transparent proxying.
func transparentCases() []goldenCase {
	return []goldenCase{
		{
			name: "transparent_default_allow_passthrough",
			snap: &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{"web-1-sidecar-proxy": transparentWeb(0)},
				Endpoints:       meshEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
			},
			mesh: testMesh,
		},
		{
			name: "transparent_intentions_scope_mesh_destinations_only",
			snap: &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{"web-1-sidecar-proxy": transparentWeb(15011)},
				Endpoints:       meshEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
				Intentions: map[string][]catalog.Intention{
					"api": {{Source: "web", Destination: "api", Action: catalog.ActionAllow}},
					"db":  {{Source: "*", Destination: "db", Action: catalog.ActionAllow}, {Source: "web", Destination: "db", Action: catalog.ActionDeny}},
				},
				ACLDefaultPolicy: catalog.ActionDeny,
				Mesh:             &catalog.Mesh{MeshDestinationsOnly: true},
			},
			mesh: testMesh,
		},
		{
			// The registration names no mode: proxy-defaults makes the
			// sidecar transparent on its outbound port, as Consul resolves
			// the mode (catalog.Snapshot.ProxyModeOf).
			name: "transparent_from_proxy_defaults",
			snap: &catalog.Snapshot{
				Datacenter:      "dc1",
				Proxies:         map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy()},
				Endpoints:       meshEndpoints(),
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
				ProxyDefaults: &catalog.ProxyDefaults{Mode: catalog.ModeTransparent,
					TransparentProxy: catalog.TransparentProxy{OutboundListenerPort: 15021}},
			},
			mesh: testMesh,
		},
	}
}

func TestIntentionAllows(t *testing.T) {
	l7 := []catalog.IntentionPermission{{Action: catalog.ActionDeny}}
	tests := []struct {
		name         string
		intentions   []catalog.Intention
		defaultAllow bool
		want         bool
	}{
		{name: "no intention, default allow", defaultAllow: true, want: true},
		{name: "no intention, default deny", want: false},
		{name: "exact allow beats default deny", intentions: []catalog.Intention{{Source: "web", Destination: "api", Action: "allow"}}, want: true},
		{name: "exact deny beats wildcard allow", defaultAllow: true, want: false, intentions: []catalog.Intention{
			{Source: "*", Destination: "api", Action: "allow"}, {Source: "web", Destination: "api", Action: "deny"}}},
		{name: "wildcard destination deny", defaultAllow: true, want: false, intentions: []catalog.Intention{{Source: "web", Destination: "*", Action: "deny"}}},
		{name: "other source only", want: false, intentions: []catalog.Intention{{Source: "lb", Destination: "api", Action: "allow"}}},
		{name: "L7 intention counts as reachable", want: true, intentions: []catalog.Intention{{Source: "web", Destination: "api", Permissions: l7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := &catalog.Snapshot{Intentions: map[string][]catalog.Intention{}}
			for _, in := range tt.intentions {
				snap.Intentions[in.Destination] = append(snap.Intentions[in.Destination], in)
			}
			if got := intentionAllows(intentionsFor(snap, "api"), "web", tt.defaultAllow); got != tt.want {
				t.Errorf("intentionAllows(web → api) = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTransparentScope pins which services get a filter chain: the ones
// intentions let web reach, with a virtual IP, never web itself.
func TestTransparentScope(t *testing.T) {
	for _, tt := range transparentCases() {
		t.Run(tt.name, func(t *testing.T) {
			r := Translate(tt.snap, tt.mesh).Proxies["web-1-sidecar-proxy"]
			var out *listenerv3.Listener
			for _, l := range r.Listeners {
				if l.Address.GetSocketAddress().GetAddress() == outboundListenerAddress && len(l.ListenerFilters) == 1 {
					out = l
				}
			}
			if out == nil {
				t.Fatal("no outbound listener")
			}
			var chains []string
			for _, fc := range out.FilterChains {
				chains = append(chains, fc.Name)
			}
			want := []string{"api", "db"}
			if tt.snap.ACLDefaultPolicy == catalog.ActionDeny {
				want = []string{"api"}
			}
			if !slices.Equal(chains, want) {
				t.Errorf("filter chains %v, want %v", chains, want)
			}
			meshOnly := tt.snap.Mesh != nil && tt.snap.Mesh.MeshDestinationsOnly
			if passthrough := out.DefaultFilterChain != nil; passthrough == meshOnly {
				t.Errorf("default (passthrough) chain present = %v with mesh %+v", passthrough, tt.snap.Mesh)
			}
		})
	}
}
