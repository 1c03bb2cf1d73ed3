package consultest_test

import (
	"context"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
)

func TestStartRegisterRestart(t *testing.T) {
	srv := consultest.Start(t)
	client := srv.Client()

	reg := &api.AgentServiceRegistration{
		ID:   "api-1",
		Name: "api",
		Port: 8080,
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{
			Port: 21000,
			// Replace Consul's default sidecar checks (a TCP check that
			// needs a listener) by an alias of the app's health.
			Checks: api.AgentServiceChecks{{Name: "alias", AliasService: "api-1"}},
		}},
	}
	if err := client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register: %v", err)
	}
	got := consultest.WaitForPassing(t, client, "api", 1)
	if id := got[0].Service.ID; id != "api-1-sidecar-proxy" {
		t.Errorf("sidecar ID = %q, want api-1-sidecar-proxy", id)
	}

	addr := srv.HTTPAddr
	srv.Restart()
	if srv.HTTPAddr != addr {
		t.Errorf("HTTPAddr after Restart = %q, want %q", srv.HTTPAddr, addr)
	}
	// A dev agent forgets its catalog on restart.
	consultest.WaitForPassing(t, client, "api", 0)
	if err := client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register after restart: %v", err)
	}
	consultest.WaitForPassing(t, client, "api", 1)
}

func TestStartTwoAgents(t *testing.T) {
	a, b := consultest.Start(t), consultest.Start(t)
	if a.HTTPAddr == b.HTTPAddr || a.NodeName == b.NodeName {
		t.Errorf("agents share an address or node name: %+v, %+v", a, b)
	}
}

// TestPeer peers two agents of different datacenters and exports a
// service from one to the other, which then sees it imported.
func TestPeer(t *testing.T) {
	dc1 := consultest.Start(t, consultest.WithDatacenter("dc1"), consultest.WithPeering())
	dc2 := consultest.Start(t, consultest.WithDatacenter("dc2"), consultest.WithPeering())
	consultest.Peer(t, dc2, "dc1", dc1, "dc2")
	p, _, err := dc1.Client().Peerings().Read(context.Background(), "dc2", nil)
	if err != nil || p == nil || p.Remote.Datacenter != "dc2" || len(p.PeerCAPems) == 0 {
		t.Fatalf("peering dc2 as dc1 sees it: %+v, %v; want dc2's datacenter and CA roots", p, err)
	}
}
