package discovery

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

func TestRemovalToHold(t *testing.T) {
	ep := func(id string, h catalog.Health) catalog.Endpoint {
		return catalog.Endpoint{ProxyID: id, Node: "n", Health: h}
	}
	pass, warn, crit := catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical
	four := []catalog.Endpoint{ep("a", pass), ep("b", pass), ep("c", pass), ep("d", pass)}
	tests := []struct {
		name          string
		before, after []catalog.Endpoint
		share         float64
		want          int
	}{
		{"3 of 4 vanish", four, four[:1], 50, 3},
		{"2 of 4 is not more than 50 %", four, four[:2], 50, 0},
		{"2 of 4 is more than 40 %", four, four[:2], 40, 2},
		{"every instance vanishes", four, nil, 50, 4},
		{"warning instances count as not failing", []catalog.Endpoint{ep("a", warn), ep("b", warn), ep("c", pass)}, nil, 50, 3},
		{"critical instances removed apply at once", []catalog.Endpoint{ep("a", crit), ep("b", crit), ep("c", crit), ep("d", pass)}, nil, 50, 0},
		{"turning critical is no removal", four, []catalog.Endpoint{ep("a", pass), ep("b", crit), ep("c", crit), ep("d", crit)}, 50, 0},
		{"replaced instances vanish", four, []catalog.Endpoint{ep("a", pass), ep("x", pass), ep("y", pass), ep("z", pass)}, 50, 3},
		{"the same ID on another node is another instance", four[:1], []catalog.Endpoint{{ProxyID: "a", Node: "m"}}, 50, 1},
		{"nothing before", nil, four, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := removalToHold(tt.before, tt.after, tt.share); got != tt.want {
				t.Errorf("removalToHold = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConfigRemovalShare(t *testing.T) {
	for _, share := range []float64{-1, 100, 150} {
		_, err := New(Config{Client: &api.Client{}, RemovalShare: share})
		want := fmt.Sprintf("discovery: Config.RemovalShare %v is not a percentage above 0 and below 100", share)
		if err == nil || err.Error() != want {
			t.Errorf("RemovalShare %v: error %v, want %q", share, err, want)
		}
	}
	if _, err := New(Config{Client: &api.Client{}, RemovalShare: 99.5}); err != nil {
		t.Errorf("RemovalShare 99.5: %v", err)
	}
}

// The tests below run against a real Consul dev agent. Their instances
// are registered in the catalog on a node of their own, without an
// agent, so that a transaction can remove or fail several at once, as a
// restarting agent or anti-entropy does, in one Consul answer.

const guardNode = "guard-node"

// catalogInstance registers service instance api-<i> and its sidecar on
// guardNode, the sidecar with a check of the given status.
func catalogInstance(t *testing.T, client *api.Client, i int, status string) {
	t.Helper()
	id := fmt.Sprintf("api-%d", i)
	regs := []*api.CatalogRegistration{
		{Node: guardNode, Address: "127.0.0.1", Service: &api.AgentService{ID: id, Service: "api", Port: 8080 + i}},
		{Node: guardNode, Address: "127.0.0.1", Service: &api.AgentService{
			ID: id + "-sidecar-proxy", Service: "api-sidecar-proxy", Kind: api.ServiceKindConnectProxy, Port: 21000 + i,
			Proxy: &api.AgentServiceConnectProxyConfig{DestinationServiceName: "api", DestinationServiceID: id, LocalServicePort: 8080 + i},
		}, Check: &api.AgentCheck{Node: guardNode, CheckID: id + "-check", Name: id, Status: status, ServiceID: id + "-sidecar-proxy"}},
	}
	for _, r := range regs {
		if _, err := client.Catalog().Register(r, nil); err != nil {
			t.Fatalf("register %s: %v", r.Service.ID, err)
		}
	}
}

// inOneTransaction applies ops atomically: Consul answers watches with
// all of them or none.
func inOneTransaction(t *testing.T, client *api.Client, ops api.TxnOps) {
	t.Helper()
	ok, resp, _, err := client.Txn().Txn(ops, nil)
	if err != nil {
		t.Fatalf("transaction: %v", err)
	}
	if !ok {
		for _, e := range resp.Errors {
			t.Errorf("transaction op %d: %s", e.OpIndex, e.What)
		}
		t.FailNow()
	}
}

// deregisterOps removes instances api-<i> and their sidecars.
func deregisterOps(ids ...int) api.TxnOps {
	var ops api.TxnOps
	for _, i := range ids {
		id := fmt.Sprintf("api-%d", i)
		for _, svc := range []api.AgentService{{ID: id + "-sidecar-proxy", Service: "api-sidecar-proxy"}, {ID: id, Service: "api"}} {
			ops = append(ops, &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: guardNode, Service: svc}})
		}
	}
	return ops
}

// failOps turns the sidecar checks of instances api-<i> critical.
func failOps(ids ...int) api.TxnOps {
	var ops api.TxnOps
	for _, i := range ids {
		id := fmt.Sprintf("api-%d", i)
		ops = append(ops, &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
			Node: guardNode, CheckID: id + "-check", Name: id, Status: api.HealthCritical, ServiceID: id + "-sidecar-proxy"}}})
	}
	return ops
}

func apiEndpoints(s *catalog.Snapshot) (total, critical int) {
	for _, e := range s.Endpoints["api"] {
		total++
		if e.Health == catalog.HealthCritical {
			critical++
		}
	}
	return total, critical
}

func startGuardedMesh(t *testing.T, grace time.Duration) (*api.Client, *Watcher) {
	t.Helper()
	client := consultest.Start(t).Client()
	for i := 1; i <= 4; i++ {
		catalogInstance(t, client, i, api.HealthPassing)
	}
	w := startWatcher(t, fastConfig(Config{Client: client, RemovalGrace: grace}))
	waitSnapshot(t, w, "4 passing api instances", func(s *catalog.Snapshot) bool { return allPassing(s, "api", 4) })
	return client, w
}

// TestConsulRemovalGuardHoldsVanishedInstances: 3 of 4 instances
// deregistered in one Consul answer are held for the grace, counted,
// and removed once it is over.
func TestConsulRemovalGuardHoldsVanishedInstances(t *testing.T) {
	const grace = 2 * time.Second
	client, w := startGuardedMesh(t, grace)
	removed := time.Now()
	inOneTransaction(t, client, deregisterOps(2, 3, 4))
	poll.UntilTrue(t, 10*time.Second, "the removal held", func() bool { return w.Stats().RemovalsHeld == 1 })
	if st := w.Stats(); st.HeldServices != 1 {
		t.Errorf("HeldServices = %d while the removal is held, want 1", st.HeldServices)
	}
	if total, _ := apiEndpoints(w.Current()); total != 4 && time.Since(removed) < grace {
		t.Errorf("%d api endpoints published while the removal is held, want 4", total)
	}
	waitSnapshot(t, w, "the removal applied", func(s *catalog.Snapshot) bool { return allPassing(s, "api", 1) })
	if held := time.Since(removed); held < grace {
		t.Errorf("removal applied after %v, before the %v grace", held, grace)
	}
	if st := w.Stats(); st.HeldServices != 0 || st.RemovalsHeld != 1 {
		t.Errorf("after the grace: %+v, want no service held and 1 removal held in all", st)
	}
}

// TestConsulRemovalGuardLetsFailuresThrough: 3 of 4 instances turning
// critical in one answer apply at once, and so does their removal
// afterwards: Consul's checks back it.
func TestConsulRemovalGuardLetsFailuresThrough(t *testing.T) {
	client, w := startGuardedMesh(t, time.Hour)
	inOneTransaction(t, client, failOps(2, 3, 4))
	waitSnapshot(t, w, "3 critical api instances", func(s *catalog.Snapshot) bool {
		total, critical := apiEndpoints(s)
		return total == 4 && critical == 3
	})
	inOneTransaction(t, client, deregisterOps(2, 3, 4))
	waitSnapshot(t, w, "the critical instances removed", func(s *catalog.Snapshot) bool { return allPassing(s, "api", 1) })
	if st := w.Stats(); st.RemovalsHeld != 0 {
		t.Errorf("RemovalsHeld = %d, want 0", st.RemovalsHeld)
	}
}

// TestConsulRemovalGuardHoldsAServiceThatLeaves: a service whose every
// instance is deregistered leaves Consul's catalog; its instances are
// held too, then dropped.
func TestConsulRemovalGuardHoldsAServiceThatLeaves(t *testing.T) {
	const grace = 2 * time.Second
	client, w := startGuardedMesh(t, grace)
	removed := time.Now()
	inOneTransaction(t, client, deregisterOps(1, 2, 3, 4))
	poll.UntilTrue(t, 10*time.Second, "the removal held", func() bool { return w.Stats().RemovalsHeld == 1 })
	waitSnapshot(t, w, "api gone", func(s *catalog.Snapshot) bool { return len(s.Endpoints["api"]) == 0 })
	if held := time.Since(removed); held < grace {
		t.Errorf("api dropped after %v, before the %v grace", held, grace)
	}
}
