package discovery

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// sidecarEntry is a /v1/health/connect entry of the sidecar "<id>-sidecar-proxy"
// of service instance id of service dest, on node node-1 (10.0.0.1).
func sidecarEntry(dest, id string, port int, modify ...func(*api.ServiceEntry)) *api.ServiceEntry {
	e := &api.ServiceEntry{
		Node: &api.Node{Node: "node-1", Address: "10.0.0.1"},
		Service: &api.AgentService{
			Kind:    api.ServiceKindConnectProxy,
			ID:      id + "-sidecar-proxy",
			Service: dest + "-sidecar-proxy",
			Port:    port,
			Weights: api.AgentWeights{Passing: 1, Warning: 1},
			Proxy: &api.AgentServiceConnectProxyConfig{
				DestinationServiceName: dest,
				DestinationServiceID:   id,
				LocalServiceAddress:    "127.0.0.1",
				LocalServicePort:       8080,
			},
		},
		Checks: api.HealthChecks{{CheckID: "serfHealth", Status: api.HealthPassing}},
	}
	for _, m := range modify {
		m(e)
	}
	return e
}

func TestConvertConnectEntries(t *testing.T) {
	tests := []struct {
		name          string
		entries       []*api.ServiceEntry
		wantProxies   []*catalog.Proxy
		wantEndpoints []catalog.Endpoint
	}{
		{
			name: "empty",
		},
		{
			name: "defaults: node address, local address, weights",
			entries: []*api.ServiceEntry{sidecarEntry("api", "api-1", 21000, func(e *api.ServiceEntry) {
				e.Service.Proxy.LocalServiceAddress = ""
				e.Service.Weights = api.AgentWeights{}
			})},
			wantProxies: []*catalog.Proxy{{
				ID: "api-1-sidecar-proxy", Name: "api-sidecar-proxy", Node: "node-1",
				Address: "10.0.0.1", Port: 21000,
				DestinationName: "api", DestinationID: "api-1",
				LocalAddress: "127.0.0.1", LocalPort: 8080,
			}},
			wantEndpoints: []catalog.Endpoint{{
				ProxyID: "api-1-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21000,
				Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1,
			}},
		},
		{
			name: "explicit address, protocol, upstreams and weights",
			entries: []*api.ServiceEntry{sidecarEntry("web", "web-1", 21001, func(e *api.ServiceEntry) {
				e.Service.Address = "10.0.0.9"
				e.Service.Weights = api.AgentWeights{Passing: 5, Warning: 0}
				e.Service.Proxy.LocalServiceAddress = "10.0.0.9"
				e.Service.Proxy.Config = map[string]any{"protocol": " HTTP "}
				e.Service.Proxy.Upstreams = []api.Upstream{
					{DestinationType: api.UpstreamDestTypeService, DestinationName: "db", LocalBindPort: 9192},
					{DestinationName: "api", Datacenter: "dc2", LocalBindAddress: "127.0.0.2", LocalBindPort: 9191,
						Config: map[string]any{"protocol": "grpc", "connect_timeout_ms": 500, "limits": map[string]any{"max_connections": "x"}}},
					{DestinationType: api.UpstreamDestTypePreparedQuery, DestinationName: "q", LocalBindPort: 9193},
					{DestinationName: "sock", LocalBindSocketPath: "/tmp/sock"},
				}
				e.Checks = append(e.Checks, &api.HealthCheck{Status: api.HealthWarning})
				e.Service.Tags = []string{"canary"}
				e.Service.Meta = map[string]string{"version": "v2"}
			})},
			wantProxies: []*catalog.Proxy{{
				ID: "web-1-sidecar-proxy", Name: "web-sidecar-proxy", Node: "node-1",
				Address: "10.0.0.9", Port: 21001,
				DestinationName: "web", DestinationID: "web-1",
				LocalAddress: "10.0.0.9", LocalPort: 8080, Protocol: "http",
				Upstreams: []catalog.Upstream{
					{DestinationName: "db", LocalBindAddress: "127.0.0.1", LocalBindPort: 9192},
					{DestinationName: "api", Datacenter: "dc2", LocalBindAddress: "127.0.0.2", LocalBindPort: 9191, Protocol: "grpc",
						Config:         &catalog.UpstreamConfig{ConnectTimeout: 500 * time.Millisecond},
						ConfigProblems: []string{`'limits.max_connections' cannot parse value as 'int': strconv.ParseInt: invalid syntax`}},
				},
			}},
			wantEndpoints: []catalog.Endpoint{{
				ProxyID: "web-1-sidecar-proxy", Node: "node-1", Address: "10.0.0.9", Port: 21001,
				Health: catalog.HealthWarning, WeightPassing: 5, WeightWarning: 0,
				Tags: []string{"canary"}, Meta: map[string]string{"version": "v2"},
			}},
		},
		{
			name: "transparent mode, outbound port and virtual IP",
			entries: []*api.ServiceEntry{sidecarEntry("web", "web-1", 21000, func(e *api.ServiceEntry) {
				e.Service.Proxy.Mode = api.ProxyModeTransparent
				e.Service.Proxy.TransparentProxy = &api.TransparentProxyConfig{OutboundListenerPort: 15011}
				e.Service.TaggedAddresses = map[string]api.ServiceAddress{
					"consul-virtual": {Address: "240.0.0.3", Port: 21000},
					"lan_ipv4":       {Address: "10.0.0.1", Port: 21000},
				}
			})},
			wantProxies: []*catalog.Proxy{{
				ID: "web-1-sidecar-proxy", Name: "web-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21000,
				DestinationName: "web", DestinationID: "web-1", LocalAddress: "127.0.0.1", LocalPort: 8080,
				Mode: catalog.ModeTransparent, OutboundListenerPort: 15011,
			}},
			wantEndpoints: []catalog.Endpoint{{
				ProxyID: "web-1-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21000,
				Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1, VirtualIP: "240.0.0.3",
			}},
		},
		{
			name: "sorted by ID then node; non-proxies skipped",
			entries: []*api.ServiceEntry{
				sidecarEntry("api", "api-2", 21002),
				sidecarEntry("api", "api-1", 21001, func(e *api.ServiceEntry) { e.Node = &api.Node{Node: "node-2", Address: "10.0.0.2"} }),
				sidecarEntry("api", "api-1", 21000),
				{Node: &api.Node{Node: "node-1"}, Service: &api.AgentService{ID: "api-native", Service: "api",
					Connect: &api.AgentServiceConnect{Native: true}}},
				nil,
			},
			wantProxies: []*catalog.Proxy{
				{ID: "api-1-sidecar-proxy", Name: "api-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21000,
					DestinationName: "api", DestinationID: "api-1", LocalAddress: "127.0.0.1", LocalPort: 8080},
				{ID: "api-1-sidecar-proxy", Name: "api-sidecar-proxy", Node: "node-2", Address: "10.0.0.2", Port: 21001,
					DestinationName: "api", DestinationID: "api-1", LocalAddress: "127.0.0.1", LocalPort: 8080},
				{ID: "api-2-sidecar-proxy", Name: "api-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21002,
					DestinationName: "api", DestinationID: "api-2", LocalAddress: "127.0.0.1", LocalPort: 8080},
			},
			wantEndpoints: []catalog.Endpoint{
				{ProxyID: "api-1-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21000, WeightPassing: 1, WeightWarning: 1},
				{ProxyID: "api-1-sidecar-proxy", Node: "node-2", Address: "10.0.0.2", Port: 21001, WeightPassing: 1, WeightWarning: 1},
				{ProxyID: "api-2-sidecar-proxy", Node: "node-1", Address: "10.0.0.1", Port: 21002, WeightPassing: 1, WeightWarning: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := convertConnectEntries("api", tt.entries)
			if diff := cmp.Diff(tt.wantProxies, got.proxies); diff != "" {
				t.Errorf("proxies (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEndpoints, got.endpoints); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertServiceDefaults(t *testing.T) {
	entries := []api.ConfigEntry{
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "HTTP"},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "db"},
		&api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal},
	}
	want := map[string]*catalog.ServiceDefaults{
		"api": {Name: "api", Protocol: "http"},
		"db":  {Name: "db"},
	}
	if diff := cmp.Diff(want, convertServiceDefaults(entries)); diff != "" {
		t.Errorf("convertServiceDefaults (-want +got):\n%s", diff)
	}
	if got := convertServiceDefaults(nil); got == nil || len(got) != 0 {
		t.Errorf("convertServiceDefaults(nil) = %#v, want an empty non-nil map", got)
	}
}

func TestConvertProxyDefaults(t *testing.T) {
	tests := []struct {
		name    string
		entries []api.ConfigEntry
		want    *catalog.ProxyDefaults
	}{
		{name: "none"},
		{
			name: "global with protocol",
			entries: []api.ConfigEntry{&api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
				Config: map[string]any{"protocol": "http2"}}},
			want: &catalog.ProxyDefaults{Protocol: "http2"},
		},
		{
			name:    "global without protocol",
			entries: []api.ConfigEntry{&api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal}},
			want:    &catalog.ProxyDefaults{},
		},
		{
			name: "non-string protocol ignored",
			entries: []api.ConfigEntry{&api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
				Config: map[string]any{"protocol": 7}}},
			want: &catalog.ProxyDefaults{},
		},
		{
			name:    "other name ignored",
			entries: []api.ConfigEntry{&api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: "other"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, convertProxyDefaults(tt.entries)); diff != "" {
				t.Errorf("convertProxyDefaults (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertMesh(t *testing.T) {
	tests := []struct {
		name    string
		entries []api.ConfigEntry
		want    *catalog.Mesh
	}{
		{name: "none"},
		{
			name:    "mesh destinations only",
			entries: []api.ConfigEntry{&api.MeshConfigEntry{TransparentProxy: api.TransparentProxyMeshConfig{MeshDestinationsOnly: true}}},
			want:    &catalog.Mesh{MeshDestinationsOnly: true},
		},
		{
			name:    "defaults",
			entries: []api.ConfigEntry{&api.MeshConfigEntry{}},
			want:    &catalog.Mesh{},
		},
		{
			name: "TLS in each direction; an empty direction is none",
			entries: []api.ConfigEntry{&api.MeshConfigEntry{TLS: &api.MeshTLSConfig{
				Incoming: &api.MeshDirectionalTLSConfig{TLSMinVersion: "TLSv1_3"},
				Outgoing: &api.MeshDirectionalTLSConfig{},
			}}},
			want: &catalog.Mesh{TLSIncoming: &catalog.TLSParams{MinVersion: "TLSv1_3"}},
		},
		{
			name: "outgoing versions and suites",
			entries: []api.ConfigEntry{&api.MeshConfigEntry{TLS: &api.MeshTLSConfig{
				Outgoing: &api.MeshDirectionalTLSConfig{TLSMinVersion: "TLS_AUTO", TLSMaxVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
			}}},
			want: &catalog.Mesh{TLSOutgoing: &catalog.TLSParams{MinVersion: "TLS_AUTO", MaxVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, convertMesh(tt.entries)); diff != "" {
				t.Errorf("convertMesh (-want +got):\n%s", diff)
			}
		})
	}
}
