package translate

import (
	"slices"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/catalog"
)

// peerRoots stands for a peer's CA roots; any real root will do for the
// shape of the resources.
var peerRoots = string(testMesh.RootsPEM)

// peeringCases are the golden cases of cluster peering: a sidecar calling
// services a peer exports (the importing side), and a sidecar and mesh
// gateway of a service exported to a peer (the exporting side).
func peeringCases() []goldenCase {
	dc2 := &catalog.Peer{Name: "dc2", Datacenter: "dc2", TrustDomain: "peer-dc2.consul", RootsPEM: []string{peerRoots}}
	importedAPI := &catalog.ImportedService{Peer: "dc2", Service: "api", Protocol: "http",
		SNI:       "api.default.default.dc1.external.peer-dc2.consul",
		SPIFFEIDs: []string{"spiffe://peer-dc2.consul/ns/default/dc/dc2/svc/api", "spiffe://peer-dc2.consul/gateway/mesh/dc/dc2"},
		Endpoints: []catalog.Endpoint{{ProxyID: "api-sidecar-proxy-instance-0", Node: "n-dc2", Address: "192.0.2.10", Port: 8443,
			Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
	}
	dc1 := &catalog.Peer{Name: "dc1", Datacenter: "dc1", TrustDomain: "peer-dc1.consul", RootsPEM: []string{peerRoots}}
	apiSidecar := &catalog.Proxy{ID: "api-1-sidecar-proxy", Name: "api-sidecar-proxy", Node: "node-1", Address: "127.0.0.1", Port: 21001,
		DestinationName: "api", DestinationID: "api-1", LocalAddress: "127.0.0.1", LocalPort: 9090}
	gateway := &catalog.Proxy{ID: "mesh-gateway-1", Name: "mesh-gateway", Node: "node-1", Kind: catalog.KindMeshGateway, Address: "127.0.0.1", Port: 8443}
	return []goldenCase{
		{
			name: "peering_importing_side",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies: map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(
					catalog.Upstream{DestinationName: "api", Peer: "dc2", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191},
					catalog.Upstream{DestinationName: "db", Peer: "dc2", LocalBindAddress: "127.0.0.1", LocalBindPort: 5432},
					catalog.Upstream{DestinationName: "api", Peer: "nope", LocalBindAddress: "127.0.0.1", LocalBindPort: 9192},
				)},
				Peers:    map[string]*catalog.Peer{"dc2": dc2},
				Imported: map[string]*catalog.ImportedService{catalog.ImportedKey("dc2", "api"): importedAPI},
			},
			mesh: testMesh,
		},
		{
			// dc1's sidecars dial dc1's own mesh gateway (proxy-defaults
			// MeshGateway.Mode local), which passes their TLS on to dc2's
			// by the same SNI.
			name: "peering_importing_side_via_local_gateway",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies: map[string]*catalog.Proxy{
					"web-1-sidecar-proxy": webProxy(catalog.Upstream{DestinationName: "api", Peer: "dc2", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191}),
					"mesh-gateway-dc1":    {ID: "mesh-gateway-dc1", Name: "mesh-gateway", Kind: catalog.KindMeshGateway, Address: "127.0.0.1", Port: 8444},
				},
				ProxyDefaults: &catalog.ProxyDefaults{MeshGatewayMode: catalog.MeshGatewayLocal},
				MeshGateways: []catalog.Endpoint{{ProxyID: "mesh-gateway-dc1", Address: "127.0.0.1", Port: 8444,
					Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
				Peers:    map[string]*catalog.Peer{"dc2": dc2},
				Imported: map[string]*catalog.ImportedService{catalog.ImportedKey("dc2", "api"): importedAPI},
			},
			mesh: testMesh,
		},
		{
			name: "peering_exporting_side",
			snap: &catalog.Snapshot{
				Datacenter: "dc2",
				Proxies:    map[string]*catalog.Proxy{apiSidecar.ID: apiSidecar, gateway.ID: gateway},
				Endpoints:  apiEndpoints(),
				Peers:      map[string]*catalog.Peer{"dc1": dc1},
				Exports:    map[string][]string{"api": {"dc1"}},
				// web of peer dc1 is denied; web of this mesh is not.
				Intentions: map[string][]catalog.Intention{"api": {
					{Source: "web", SourcePeer: "dc1", Destination: "api", Action: catalog.ActionDeny},
					{Source: "batch", SourcePeer: "gone", Destination: "api", Action: catalog.ActionDeny},
				}},
			},
			mesh: testMesh,
		},
		{
			// api fails over to api-backup here, then to api of peer dc2,
			// then of peer gone: api's cluster is an aggregate of one
			// cluster per target; gone's has no instances and is reported.
			// db, whose resolver fails over to local targets only, keeps
			// one cluster with a priority per target.
			name: "peering_failover",
			snap: &catalog.Snapshot{
				Datacenter: "dc1",
				Proxies: map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(
					catalog.Upstream{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191},
					catalog.Upstream{DestinationName: "db", LocalBindAddress: "127.0.0.1", LocalBindPort: 5432},
				)},
				Endpoints: map[string][]catalog.Endpoint{
					"api":        apiEndpoints()["api"][:2],
					"api-backup": {{ProxyID: "api-backup-1-sidecar-proxy", Node: "node-3", Address: "127.0.0.5", Port: 21005, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
					"db":         {{ProxyID: "db-1-sidecar-proxy", Node: "node-3", Address: "127.0.0.6", Port: 21006, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
					"db-backup":  {{ProxyID: "db-backup-1-sidecar-proxy", Node: "node-3", Address: "127.0.0.7", Port: 21007, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
				},
				ServiceDefaults: map[string]*catalog.ServiceDefaults{
					"api":        {Name: "api", Protocol: catalog.ProtocolHTTP},
					"api-backup": {Name: "api-backup", Protocol: catalog.ProtocolHTTP},
				},
				ServiceResolvers: map[string]*catalog.ServiceResolver{
					"api": {Name: "api", Failover: map[string]catalog.ResolverFailover{catalog.Wildcard: {Targets: []catalog.ResolverTarget{
						{Service: "api-backup"}, {Peer: "dc2"}, {Peer: "gone"},
					}}}},
					"db": {Name: "db", Failover: map[string]catalog.ResolverFailover{catalog.Wildcard: {Targets: []catalog.ResolverTarget{
						{Service: "db-backup"},
					}}}},
				},
				Peers:    map[string]*catalog.Peer{"dc2": dc2},
				Imported: map[string]*catalog.ImportedService{catalog.ImportedKey("dc2", "api"): importedAPI},
			},
			mesh: testMesh,
		},
	}
}

// TestPeeredPublicListenerPairsTrustDomains: the public listener of a
// service exported to a peer verifies the peer's certificates with the
// peer's roots for the peer's trust domain only; without exports it keeps
// the mesh's SDS bundle.
func TestPeeredPublicListenerPairsTrustDomains(t *testing.T) {
	exporting := peeringCases()[2].snap
	r := Translate(exporting, testMesh)
	ts := r.Proxies["api-1-sidecar-proxy"].Listeners[0].FilterChains[0].TransportSocket
	var ctx tlsv3.DownstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	custom := ctx.GetCommonTlsContext().GetValidationContext().GetCustomValidatorConfig()
	var cfg tlsv3.SPIFFECertValidatorConfig
	if err := custom.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatalf("public listener of an exported service: no SPIFFE validator: %v", err)
	}
	var domains []string
	for _, td := range cfg.GetTrustDomains() {
		domains = append(domains, td.GetName())
	}
	if got := strings.Join(domains, ","); got != "weft.local,peer-dc1.consul" {
		t.Errorf("trust domains %s, want weft.local,peer-dc1.consul", got)
	}

	local := *exporting
	local.Exports = nil
	ts = Translate(&local, testMesh).Proxies["api-1-sidecar-proxy"].Listeners[0].FilterChains[0].TransportSocket
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.GetCommonTlsContext().GetCombinedValidationContext() == nil {
		t.Errorf("a service exported to no peer: want the mesh's SDS bundle, got %v", ctx.GetCommonTlsContext().GetValidationContextType())
	}
}

// TestPeerIntentionsMatchThePeersTrustDomain: a source of a peer is matched
// in that peer's trust domain only; one of an unknown peer matches nobody.
func TestPeerIntentionsMatchThePeersTrustDomain(t *testing.T) {
	ins := []catalog.Intention{
		{Source: "web", SourcePeer: "dc1", Destination: "api", Action: catalog.ActionDeny},
		{Source: "web", Destination: "api", Action: catalog.ActionDeny},
		{Source: "*", SourcePeer: "gone", Destination: "api", Action: catalog.ActionDeny},
	}
	rules := rbacRules(ins, []string{"weft.local"}, func(p string) string {
		if p == "dc1" {
			return "peer-dc1.consul"
		}
		return ""
	}, true)
	var regexes []string
	for name, pol := range rules.GetPolicies() {
		re := pol.GetPrincipals()[0].GetAuthenticated().GetPrincipalName().GetSafeRegex().GetRegex()
		if re == "" { // excluding earlier principals: the first one's own
			re = pol.GetPrincipals()[0].GetAndIds().GetIds()[0].GetAuthenticated().GetPrincipalName().GetSafeRegex().GetRegex()
		}
		regexes = append(regexes, name+" "+re)
	}
	slices.Sort(regexes)
	want := []string{
		`intention-0-from-web-of-peer-dc1 ^spiffe://peer-dc1\.consul/ns/default/dc/[^/]+/svc/web$`,
		`intention-1-from-web ^spiffe://weft\.local/ns/default/dc/[^/]+/svc/web$`,
	}
	if !slices.Equal(regexes, want) {
		t.Errorf("policies:\n%s\nwant:\n%s", strings.Join(regexes, "\n"), strings.Join(want, "\n"))
	}
}

// TestMeshGatewayHoldsNoSecrets: a mesh gateway gets no leaf and no roots,
// and routes each exported service's SNI to its sidecars.
func TestMeshGatewayHoldsNoSecrets(t *testing.T) {
	r := Translate(peeringCases()[2].snap, testMesh)
	gw := r.Proxies["mesh-gateway-1"]
	if len(gw.Secrets) != 0 {
		t.Errorf("the gateway got secrets %v", gw.Secrets)
	}
	if len(gw.Listeners) != 1 {
		t.Fatalf("the gateway got %d listeners, want 1", len(gw.Listeners))
	}
	l := gw.Listeners[0]
	if ts := l.GetFilterChains()[0].GetTransportSocket(); ts != nil {
		t.Errorf("the gateway terminates TLS: %v", ts)
	}
	want := ExportedSNI("api", "dc1", "weft.local")
	if got := l.GetFilterChains()[0].GetFilterChainMatch().GetServerNames(); len(got) != 1 || got[0] != want {
		t.Errorf("server names %v, want [%s]", got, want)
	}
	for _, c := range gw.Clusters {
		if c.GetTransportSocket() != nil {
			t.Errorf("cluster %s originates TLS", c.Name)
		}
	}
}
