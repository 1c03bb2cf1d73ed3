package discovery

import (
	"cmp"
	"net/netip"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/consultest"
)

// TestConsulTerminatingGateway: a terminating gateway's registration, the
// services its entry links to it and their instances reach the snapshot,
// and sidecars see the gateway as the linked service's endpoint, as
// Consul's health/connect answers.
func TestConsulTerminatingGateway(t *testing.T) {
	srv := consultest.Start(t)
	client := srv.Client()
	for _, reg := range []*api.AgentServiceRegistration{
		{ID: "ext-1", Name: "ext", Address: "127.0.0.2", Port: 9443},
		{ID: "db-1", Name: "db", Address: "127.0.0.3", Port: 5432},
		{ID: "tgw-1", Name: "tgw", Kind: api.ServiceKindTerminatingGateway, Address: "127.0.0.1", Port: 8443},
	} {
		if err := client.Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("register %s: %v", reg.ID, err)
		}
	}
	setEntry(t, client, &api.TerminatingGatewayConfigEntry{Kind: api.TerminatingGateway, Name: "tgw", Services: []api.LinkedService{
		{Name: "ext", CAFile: "/etc/ext-ca.pem", SNI: "ext.example.com"},
		{Name: "db"},
	}})
	w := startWatcher(t, fastConfig(Config{Client: client}))

	snap := waitSnapshot(t, w, "linked services and their instances", func(s *catalog.Snapshot) bool {
		return len(s.LinkedInstances["ext"]) == 1 && len(s.LinkedInstances["db"]) == 1 && len(s.Endpoints["ext"]) == 1
	})
	node := srv.NodeName
	if diff := gocmp.Diff(&catalog.Proxy{ID: "tgw-1", Name: "tgw", Node: node, Kind: catalog.KindTerminatingGateway, Address: "127.0.0.1", Port: 8443},
		snap.Proxies["tgw-1"]); diff != "" {
		t.Errorf("gateway proxy (-want +got):\n%s", diff)
	}
	want := &catalog.TerminatingGateway{Name: "tgw", Services: []catalog.LinkedService{
		{Name: "db"}, {Name: "ext", CAFile: "/etc/ext-ca.pem", SNI: "ext.example.com"},
	}}
	if diff := gocmp.Diff(want, snap.TerminatingGateways["tgw"]); diff != "" {
		t.Errorf("linked services (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]catalog.Endpoint{{ProxyID: "ext-1", Node: node, Address: "127.0.0.2", Port: 9443, WeightPassing: 1, WeightWarning: 1}},
		snap.LinkedInstances["ext"]); diff != "" {
		t.Errorf("ext's instances (-want +got):\n%s", diff)
	}
	// What a sidecar calling ext dials: the gateway, with ext's virtual
	// IP for transparent proxies.
	gwEndpoint := snap.Endpoints["ext"]
	if len(gwEndpoint) == 1 && !netip.MustParsePrefix("240.0.0.0/4").Contains(netip.MustParseAddr(cmp.Or(gwEndpoint[0].VirtualIP, "0.0.0.0"))) {
		t.Errorf("the gateway's endpoint for ext has virtual IP %q, want ext's, in 240.0.0.0/4", gwEndpoint[0].VirtualIP)
	}
	if diff := gocmp.Diff([]catalog.Endpoint{{ProxyID: "tgw-1", Node: node, Address: "127.0.0.1", Port: 8443, WeightPassing: 1, WeightWarning: 1}},
		snap.Endpoints["ext"], cmpopts.IgnoreFields(catalog.Endpoint{}, "VirtualIP")); diff != "" {
		t.Errorf("ext's endpoints for sidecars (-want +got):\n%s", diff)
	}

	// Unlinking db stops its watch and drops its instances.
	setEntry(t, client, &api.TerminatingGatewayConfigEntry{Kind: api.TerminatingGateway, Name: "tgw", Services: []api.LinkedService{{Name: "ext"}}})
	waitSnapshot(t, w, "db unlinked", func(s *catalog.Snapshot) bool {
		gw := s.TerminatingGateways["tgw"]
		_, dbHeld := s.LinkedInstances["db"]
		return gw != nil && len(gw.Services) == 1 && !dbHeld
	})
	// A wildcard links every service, as Consul resolves it.
	setEntry(t, client, &api.TerminatingGatewayConfigEntry{Kind: api.TerminatingGateway, Name: "tgw", Services: []api.LinkedService{{Name: "*"}}})
	waitSnapshot(t, w, "the wildcard links ext and db", func(s *catalog.Snapshot) bool {
		gw := s.TerminatingGateways["tgw"]
		return gw != nil && len(s.LinkedInstances["db"]) == 1 && len(s.LinkedInstances["ext"]) == 1 &&
			slices.ContainsFunc(gw.Services, func(l catalog.LinkedService) bool { return l.Name == "db" }) &&
			slices.ContainsFunc(gw.Services, func(l catalog.LinkedService) bool { return l.Name == "ext" })
	})
	// Deregistering the gateway drops what it linked.
	if err := client.Agent().ServiceDeregister("tgw-1"); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, w, "gateway gone", func(s *catalog.Snapshot) bool {
		return s.Proxies["tgw-1"] == nil && len(s.TerminatingGateways) == 0 && len(s.LinkedInstances) == 0
	})
}
