package discovery

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// TestEntryFieldsNotApplied pins, for each field of a Consul 1.14 entry that
// weft-proxy does not apply, the note that reports it (docs/consul.md lists
// them all), and that the note carries the entry's ModifyIndex so that a
// new version is logged again.
func TestEntryFieldsNotApplied(t *testing.T) {
	const index = 42
	sd := func(e api.ServiceConfigEntry) api.ConfigEntry {
		e.Kind, e.Name, e.Protocol, e.ModifyIndex = api.ServiceDefaults, "api", "http", index
		return &e
	}
	pd := func(e api.ProxyConfigEntry) api.ConfigEntry {
		e.Kind, e.Name, e.ModifyIndex = api.ProxyDefaults, api.ProxyConfigGlobal, index
		return &e
	}
	mesh := func(e api.MeshConfigEntry) api.ConfigEntry {
		e.ModifyIndex = index
		return &e
	}
	intentions := func(src ...*api.SourceIntention) api.ConfigEntry {
		return &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api", Sources: src, ModifyIndex: index}
	}
	tests := []struct {
		name  string
		entry api.ConfigEntry
		want  []string // nil: everything is applied
	}{
		{"service-defaults applied in full", sd(api.ServiceConfigEntry{Mode: api.ProxyModeTransparent,
			MeshGateway:    api.MeshGatewayConfig{Mode: api.MeshGatewayModeNone},
			UpstreamConfig: &api.UpstreamConfiguration{Defaults: &api.UpstreamConfig{ConnectTimeoutMs: 100}}}), nil},
		{"service-defaults MeshGateway is applied", sd(api.ServiceConfigEntry{MeshGateway: api.MeshGatewayConfig{Mode: api.MeshGatewayModeLocal}}), nil},
		{"service-defaults Expose", sd(api.ServiceConfigEntry{Expose: api.ExposeConfig{Checks: true,
			Paths: []api.ExposePath{{Path: "/metrics", ListenerPort: 21500, LocalPathPort: 9102}}}}),
			[]string{`Expose.Checks = "true"`, `Expose.Paths[0] = "path=/metrics listener_port=21500 local_path_port=9102"`}},
		{"service-defaults ExternalSNI", sd(api.ServiceConfigEntry{ExternalSNI: "db.example.com"}), []string{`ExternalSNI = "db.example.com"`}},
		{"service-defaults Destination", sd(api.ServiceConfigEntry{Destination: &api.DestinationConfig{Addresses: []string{"example.com"}, Port: 443}}),
			[]string{`Destination = "addresses=example.com port=443"`}},
		{"service-defaults inbound limits and timeouts", sd(api.ServiceConfigEntry{MaxInboundConnections: 100, LocalConnectTimeoutMs: 2000,
			LocalRequestTimeoutMs: 3000, BalanceInboundConnections: "exact_balance"}), []string{
			`MaxInboundConnections = "100"`, `LocalConnectTimeoutMs = "2000"`, `LocalRequestTimeoutMs = "3000"`,
			`BalanceInboundConnections = "exact_balance"`}},
		{"service-defaults UpstreamConfig", sd(api.ServiceConfigEntry{UpstreamConfig: &api.UpstreamConfiguration{
			Defaults:  &api.UpstreamConfig{EnvoyListenerJSON: `{"name":"x"}`, MeshGateway: api.MeshGatewayConfig{Mode: api.MeshGatewayModeRemote}},
			Overrides: []*api.UpstreamConfig{{Name: "db", EnvoyClusterJSON: `{"name":"y"}`, BalanceOutboundConnections: "exact_balance"}},
		}}), []string{
			`UpstreamConfig.Defaults.EnvoyListenerJSON = "{\"name\":\"x\"}" (an Envoy escape hatch; weft-proxy is not Envoy)`,
			`UpstreamConfig.Defaults.MeshGateway.Mode = "remote"`,
			`UpstreamConfig.Overrides[0].EnvoyClusterJSON = "{\"name\":\"y\"}" (an Envoy escape hatch; weft-proxy is not Envoy)`,
			`UpstreamConfig.Overrides[0].BalanceOutboundConnections = "exact_balance"`,
		}},
		{"proxy-defaults protocol alone", pd(api.ProxyConfigEntry{Config: map[string]any{"Protocol": "http"}}), nil},
		{"proxy-defaults Config keys", pd(api.ProxyConfigEntry{Config: map[string]any{
			"protocol":                         "http",
			"envoy_extra_static_clusters_json": `{"name":"` + strings.Repeat("x", 80) + `"}`,
			"local_request_timeout_ms":         5000,
			"bind_port":                        21000,
		}}), []string{
			`Config.bind_port = "21000"`,
			`Config.envoy_extra_static_clusters_json = "{\"name\":\"` + strings.Repeat("x", 51) + `…" (an Envoy escape hatch; weft-proxy is not Envoy)`,
			`Config.local_request_timeout_ms = "5000"`,
		}},
		{"proxy-defaults MeshGateway applied, Expose not", pd(api.ProxyConfigEntry{MeshGateway: api.MeshGatewayConfig{Mode: api.MeshGatewayModeLocal},
			Expose: api.ExposeConfig{Checks: true}}), []string{`Expose.Checks = "true"`}},
		// Fields of newer Consuls (README, "Consul versions").
		{"proxy-defaults fields of newer Consuls", pd(api.ProxyConfigEntry{MutualTLSMode: api.MutualTLSModePermissive,
			AccessLogs: &api.AccessLogsConfig{Enabled: true}, EnvoyExtensions: []api.EnvoyExtension{{Name: "builtin/lua"}},
			FailoverPolicy:       &api.ServiceResolverFailoverPolicy{Mode: "order-by-locality"},
			PrioritizeByLocality: &api.ServiceResolverPrioritizeByLocality{Mode: "failover"}}), []string{
			`MutualTLSMode = "permissive"`, `AccessLogs.Enabled = "true"`, `EnvoyExtensions[0].Name = "builtin/lua"`,
			`FailoverPolicy.Mode = "order-by-locality"`, `PrioritizeByLocality.Mode = "failover"`}},
		{"mesh transparent proxy alone", mesh(api.MeshConfigEntry{TransparentProxy: api.TransparentProxyMeshConfig{MeshDestinationsOnly: true}}), nil},
		{"mesh TLS is applied", mesh(api.MeshConfigEntry{TLS: &api.MeshTLSConfig{
			Incoming: &api.MeshDirectionalTLSConfig{TLSMinVersion: "TLSv1_3"},
			Outgoing: &api.MeshDirectionalTLSConfig{TLSMinVersion: "TLS_AUTO", TLSMaxVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
		}}), nil},
		{"mesh HTTP and Peering", mesh(api.MeshConfigEntry{HTTP: &api.MeshHTTPConfig{SanitizeXForwardedClientCert: true},
			Peering: &api.PeeringMeshConfig{PeerThroughMeshGateways: true}}),
			[]string{`HTTP.SanitizeXForwardedClientCert = "true"`, `Peering.PeerThroughMeshGateways = "true"`}},
		{"intentions of this mesh", intentions(&api.SourceIntention{Name: "web", Action: "allow", Partition: "default"}), nil},
		{"intentions from a peer are applied", intentions(&api.SourceIntention{Name: "web", Action: "allow"},
			&api.SourceIntention{Name: "web", Peer: "dc2", Action: "allow"}), nil},
		{"intentions from a sameness group", intentions(&api.SourceIntention{Name: "web", SamenessGroup: "g", Action: "allow"}),
			[]string{`Sources[0] ("web") is outside this mesh's trust domain and not enforced: SamenessGroup = "g"`}},
		{"exported-services", &api.ExportedServicesConfigEntry{Name: "default", ModifyIndex: index, Services: []api.ExportedService{
			{Name: "api", Consumers: []api.ServiceConsumer{{Peer: "dc2"}, {Partition: "other"}}}}},
			[]string{`Services[0] = "api to partition other"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotIndex := notesOf(t, tt.entry)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			wantIndex := uint64(index)
			if tt.want == nil {
				wantIndex = 0
			}
			if gotIndex != wantIndex {
				t.Errorf("ModifyIndex = %d, want %d", gotIndex, wantIndex)
			}
		})
	}
}

// notesOf converts one entry and returns its notes and the ModifyIndex
// they were taken at.
func notesOf(t *testing.T, e api.ConfigEntry) ([]string, uint64) {
	entries := []api.ConfigEntry{e}
	var n *catalog.EntryNote
	switch e.GetKind() {
	case api.ServiceDefaults:
		sd := convertServiceDefaults(entries)[e.GetName()]
		return sd.Unsupported, sd.ModifyIndex
	case api.ProxyDefaults:
		pd := convertProxyDefaults(entries)
		return pd.Unsupported, pd.ModifyIndex
	case api.MeshConfig:
		m := convertMesh(entries)
		return m.Unsupported, m.ModifyIndex
	case api.ServiceIntentions:
		n = convertIntentions(entries).notApplied[e.GetName()]
	case api.ExportedServices:
		n = convertExportedServices(entries)
	default:
		t.Fatalf("no conversion for kind %q", e.GetKind())
	}
	if n == nil {
		return nil, 0
	}
	return n.Fields, n.ModifyIndex
}
