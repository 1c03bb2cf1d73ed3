package discovery

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/pkitest"
)

func TestConvertPeerings(t *testing.T) {
	root := string(pkitest.NewCA(t, "peer", "spiffe://f88377d7.consul").PEM())
	noSPIFFE := string(pkitest.NewCA(t, "plain").PEM())
	var warned []string
	got := convertPeerings([]*api.Peering{
		{Name: "dc2", State: api.PeeringStateActive, PeerCAPems: []string{root}, Remote: api.PeeringRemoteInfo{Datacenter: "dc2"}},
		{Name: "pending", State: api.PeeringStatePending, PeerCAPems: []string{root}},
		{Name: "odd", State: api.PeeringStateActive, PeerCAPems: []string{noSPIFFE}, Remote: api.PeeringRemoteInfo{Datacenter: "dc9"}},
	}, func(msg string, args ...any) { warned = append(warned, msg) })
	want := map[string]*catalog.Peer{
		"dc2": {Name: "dc2", Datacenter: "dc2", TrustDomain: "f88377d7.consul", RootsPEM: []string{root}},
		"odd": {Name: "odd", Datacenter: "dc9", RootsPEM: []string{noSPIFFE}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "no trust domain") {
		t.Errorf("warnings %q, want one about the peer whose roots name no trust domain", warned)
	}
}

// TestConvertImported decodes what Consul 1.14 answers for a service a
// peer exports (captured from a real pair of agents): one synthetic
// instance at the peer's mesh gateway, with the SNI and identities in
// Connect.PeerMeta.
func TestConvertImported(t *testing.T) {
	const answer = `[{"Node":{"Node":"n-dc2","Address":"127.0.0.1","PeerName":"dc2"},
	  "Service":{"Kind":"connect-proxy","ID":"api-sidecar-proxy-instance-0","Service":"api-sidecar-proxy","Address":"127.0.0.1","Port":8443,
	    "Weights":{"Passing":1,"Warning":1},"Connect":{"PeerMeta":{"SNI":["api.default.default.dc1.external.f88377d7.consul"],
	    "SpiffeID":["spiffe://f88377d7.consul/ns/default/dc/dc2/svc/api","spiffe://f88377d7.consul/gateway/mesh/dc/dc2"],"Protocol":"http"}},"PeerName":"dc2"},
	  "Checks":[{"CheckID":"api-sidecar-proxy-instance-0:overall-check","Status":"passing"}]}]`
	var entries []peerEntry
	if err := json.Unmarshal([]byte(answer), &entries); err != nil {
		t.Fatal(err)
	}
	got := convertImported("dc2", "api", entries)
	want := &catalog.ImportedService{Peer: "dc2", Service: "api",
		SNI:       "api.default.default.dc1.external.f88377d7.consul",
		SPIFFEIDs: []string{"spiffe://f88377d7.consul/ns/default/dc/dc2/svc/api", "spiffe://f88377d7.consul/gateway/mesh/dc/dc2"},
		Protocol:  "http",
		Endpoints: []catalog.Endpoint{{ProxyID: "api-sidecar-proxy-instance-0", Node: "n-dc2", Address: "127.0.0.1", Port: 8443,
			Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imported (-want +got):\n%s", diff)
	}
}

func TestConvertExports(t *testing.T) {
	got := convertExports([]api.ConfigEntry{&api.ExportedServicesConfigEntry{Name: "default", Services: []api.ExportedService{
		{Name: "api", Consumers: []api.ServiceConsumer{{Peer: "dc3"}, {Peer: "dc1"}, {Partition: "other"}, {Peer: "dc1"}}},
		{Name: "db", Consumers: []api.ServiceConsumer{{SamenessGroup: "g"}}},
	}}})
	if diff := cmp.Diff(map[string][]string{"api": {"dc1", "dc3"}}, got); diff != "" {
		t.Errorf("exports (-want +got):\n%s", diff)
	}
}

func TestConvertGateways(t *testing.T) {
	got := convertGateways([]*api.ServiceEntry{
		{Node: &api.Node{Node: "n1", Address: "10.0.0.1"}, Service: &api.AgentService{Kind: api.ServiceKindMeshGateway, ID: "mgw-1", Service: "mesh-gateway", Port: 8443}},
		{Node: &api.Node{Node: "n1"}, Service: &api.AgentService{ID: "api-1", Service: "api", Port: 9000}},
	})
	want := map[string]gatewayEntry{"mgw-1": {&catalog.Proxy{ID: "mgw-1", Name: "mesh-gateway", Node: "n1", Kind: catalog.KindMeshGateway, Address: "10.0.0.1", Port: 8443}, catalog.HealthPassing}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(gatewayEntry{})); diff != "" {
		t.Errorf("gateways (-want +got):\n%s", diff)
	}
}

func TestConvertIngressGateways(t *testing.T) {
	two := uint32(2)
	got := convertIngressGateways([]api.ConfigEntry{&api.IngressGatewayConfigEntry{Name: "ingress", ModifyIndex: 7,
		TLS: api.GatewayTLSConfig{Enabled: true, TLSMinVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			SDS: &api.GatewayTLSSDSConfig{ClusterName: "sds", CertResource: "gw"}},
		Listeners: []api.IngressListener{
			{Port: 8080, Protocol: "http", TLS: &api.GatewayTLSConfig{TLSMaxVersion: "TLSv1_3", SDS: &api.GatewayTLSSDSConfig{CertResource: "l"}},
				Services: []api.IngressService{
					{Name: "api", Hosts: []string{"api.example.com"}, TLS: &api.GatewayServiceTLSConfig{SDS: &api.GatewayTLSSDSConfig{ClusterName: "sds", CertResource: "api"}}},
					{Name: "web", MaxConnections: &two}}},
			{Port: 9000, Services: []api.IngressService{{Name: "db", Namespace: "other"}}},
		}}})
	want := map[string]*catalog.IngressGateway{"ingress": {Name: "ingress", ModifyIndex: 7,
		TLS: catalog.IngressTLS{Enabled: true, MinVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}},
		Listeners: []catalog.IngressListener{
			{Port: 8080, Protocol: "http", TLS: &catalog.IngressTLS{MaxVersion: "TLSv1_3"},
				Services: []catalog.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}, {Name: "web"}}},
			{Port: 9000, Services: []catalog.IngressService{{Name: "db"}}},
		},
		Unsupported: []string{
			`TLS.SDS (ClusterName "sds", CertResource "gw": certificates from an external SDS cluster)`,
			`Listeners[0].TLS.SDS (ClusterName "", CertResource "l": certificates from an external SDS cluster)`,
			`Listeners[0].Services[0].TLS.SDS (ClusterName "sds", CertResource "api": certificates from an external SDS cluster)`,
			"Listeners[0].Services[1] (header changes, limits or passive health check)",
			`Listeners[1].Services[0].Namespace = "other"`,
		},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ingress gateways (-want +got):\n%s", diff)
	}
}
