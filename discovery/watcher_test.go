package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
)

// meshData is a fake Consul with services api and web, one sidecar each.
func meshData() fakeData {
	return fakeData{
		datacenter: "dc-fake",
		leader:     "10.0.0.1:8300",
		names:      []string{"consul", "api", "web"},
		connect: map[string][]*api.ServiceEntry{
			"api": {sidecarEntry("api", "api-1", 21000)},
			"web": {sidecarEntry("web", "web-1", 21001)},
		},
		serviceDefaults: []map[string]any{{"Kind": api.ServiceDefaults, "Name": "api", "Protocol": "http"}},
	}
}

// hasDefaults: the snapshot has service-defaults for exactly names.
func hasDefaults(names ...string) func(*catalog.Snapshot) bool {
	return func(s *catalog.Snapshot) bool {
		if len(s.ServiceDefaults) != len(names) {
			return false
		}
		for _, n := range names {
			if s.ServiceDefaults[n] == nil {
				return false
			}
		}
		return true
	}
}

func both(a, b func(*catalog.Snapshot) bool) func(*catalog.Snapshot) bool {
	return func(s *catalog.Snapshot) bool { return a(s) && b(s) }
}

func hasProxies(ids ...string) func(*catalog.Snapshot) bool {
	return func(s *catalog.Snapshot) bool {
		if len(s.Proxies) != len(ids) {
			return false
		}
		for _, id := range ids {
			if s.Proxies[id] == nil {
				return false
			}
		}
		return true
	}
}

func endpointHealth(s *catalog.Snapshot, service, proxyID string) (catalog.Health, bool) {
	for _, e := range s.Endpoints[service] {
		if e.ProxyID == proxyID {
			return e.Health, true
		}
	}
	return 0, false
}

func TestWatcherFirstSnapshotWaitsForEveryWatch(t *testing.T) {
	for _, path := range []string{
		"/v1/catalog/services",
		"/v1/health/connect/web",
		"/v1/config/service-defaults",
		"/v1/config/proxy-defaults",
		"/v1/config/service-intentions",
	} {
		t.Run(path, func(t *testing.T) {
			consul := startFakeConsul(t, meshData())
			consul.fail(path, true)
			w := startWatcher(t, fastConfig(Config{Client: consul.client}))

			// Every other watch has answered; this one has failed repeatedly.
			poll.UntilTrue(t, waitTimeout, "one watch pending", func() bool { return w.Stats().Pending == 1 })
			waitErrors(t, w, 3)
			if cur := w.Current(); cur != nil {
				t.Fatalf("Current() = %s before every watch answered, want nil", describe(cur))
			}
			expectNoSnapshot(t, w)
			if st := w.Stats(); st.Pending != 1 || st.Version != 0 || st.Watches == 0 {
				t.Errorf("Stats() = %+v, want running watches, 1 pending and no version", st)
			}

			consul.fail(path, false)
			snap := waitSnapshot(t, w, "api and web", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy"))
			if snap.Version != 1 || snap.Datacenter != "dc-fake" || snap.ProtocolOf("api") != catalog.ProtocolHTTP {
				t.Errorf("first snapshot = %s, datacenter %q, api protocol %q; want version 1 of dc-fake with api on http",
					describe(snap), snap.Datacenter, snap.ProtocolOf("api"))
			}
		})
	}
}

func TestWatcherFailingWatchKeepsItsLastResult(t *testing.T) {
	consul := startFakeConsul(t, meshData())
	w := startWatcher(t, fastConfig(Config{Client: consul.client, Datacenter: "dc1"}))
	first := waitSnapshot(t, w, "api and web", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy"))

	// api's watch fails while api turns critical and db appears: the next
	// snapshot has db and api's last good state.
	consul.fail("/v1/health/connect/api", true)
	consul.update(func(d *fakeData) {
		d.connect["api"] = []*api.ServiceEntry{sidecarEntry("api", "api-1", 21000, func(e *api.ServiceEntry) {
			e.Checks = append(e.Checks, &api.HealthCheck{Status: api.HealthCritical})
		})}
		d.names = append(d.names, "db")
		d.connect["db"] = []*api.ServiceEntry{sidecarEntry("db", "db-1", 21002)}
	})
	snap := waitSnapshot(t, w, "db", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy", "db-1-sidecar-proxy"))
	if h, _ := endpointHealth(snap, "api", "api-1-sidecar-proxy"); h != catalog.HealthPassing {
		t.Errorf("api-1 health while its watch fails = %v, want the last good passing", h)
	}
	if snap.Version <= first.Version || snap.Datacenter != "dc1" {
		t.Errorf("snapshot %s of %q, want a version after %d of dc1", describe(snap), snap.Datacenter, first.Version)
	}

	consul.fail("/v1/health/connect/api", false)
	waitSnapshot(t, w, "api-1 critical", func(s *catalog.Snapshot) bool {
		h, ok := endpointHealth(s, "api", "api-1-sidecar-proxy")
		return ok && h == catalog.HealthCritical
	})
}

func TestWatcherOutagePublishesNothing(t *testing.T) {
	consul := startFakeConsul(t, meshData())
	w := startWatcher(t, fastConfig(Config{Client: consul.client}))
	good := waitSnapshot(t, w, "api and web", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy"))

	for _, path := range []string{"/v1/catalog/services", "/v1/health/connect/api", "/v1/health/connect/web",
		"/v1/config/service-defaults", "/v1/config/proxy-defaults"} {
		consul.fail(path, true)
	}
	consul.update(func(d *fakeData) { d.names, d.connect = nil, nil })
	waitErrors(t, w, 20)
	expectNoSnapshot(t, w)
	if w.Current() != good {
		t.Errorf("Current() = %s during the outage, want the last good %s", describe(w.Current()), describe(good))
	}
}

func TestWatcherEmptyCatalogNeedsALeader(t *testing.T) {
	consul := startFakeConsul(t, meshData())
	w := startWatcher(t, fastConfig(Config{Client: consul.client}))
	good := waitSnapshot(t, w, "api and web", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy"))

	consul.update(func(d *fakeData) { d.leader, d.names = "", []string{"consul"} })
	waitErrors(t, w, 3)
	expectNoSnapshot(t, w)
	if w.Current() != good {
		t.Errorf("Current() = %s, want the last good one while the catalog is empty without a leader", describe(w.Current()))
	}

	consul.update(func(d *fakeData) { d.leader = "10.0.0.2:8300" })
	waitSnapshot(t, w, "no proxies", hasProxies())
}

// TestWatcherHoldsThroughConsulResync (RELIABILITY #2): Consul comes back
// without its state (lower indexes) and with only some services
// re-registered. Until ResyncGrace has passed, instances it no longer
// lists are kept and those it lists apply; then its catalog applies as is.
// With the protection off, it applies at once.
func TestWatcherHoldsThroughConsulResync(t *testing.T) {
	for _, tt := range []struct {
		name  string
		grace time.Duration
	}{{"held for the grace", 500 * time.Millisecond}, {"protection off", -1}} {
		t.Run(tt.name, func(t *testing.T) {
			consul := startFakeConsul(t, meshData())
			cfg := fastConfig(Config{Client: consul.client})
			cfg.QueryWait = 20 * time.Millisecond
			cfg.ResyncGrace = tt.grace
			cfg.RemovalGrace = tt.grace // the removals are the guard's too
			w := startWatcher(t, cfg)
			waitSnapshot(t, w, "api and web", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy"))

			// Consul came back without its state and with lower indexes,
			// and no request failed in between; api-2 registered first.
			restarted := time.Now()
			consul.restart(func(d *fakeData) {
				d.names = []string{"consul", "api"}
				d.connect = map[string][]*api.ServiceEntry{"api": {sidecarEntry("api", "api-2", 21005)}}
				d.serviceDefaults = []map[string]any{{"Kind": api.ServiceDefaults, "Name": "web", "Protocol": "http2"}}
			})
			if tt.grace > 0 {
				waitSnapshot(t, w, "api-2 and web's defaults added, api-1, web and api's defaults kept", both(
					hasProxies("api-1-sidecar-proxy", "api-2-sidecar-proxy", "web-1-sidecar-proxy"), hasDefaults("api", "web")))
			}
			waitSnapshot(t, w, "api-2 and web's defaults only", both(hasProxies("api-2-sidecar-proxy"), hasDefaults("web")))
			if held := time.Since(restarted); tt.grace > 0 && held < tt.grace {
				t.Errorf("api-1 and web dropped %v after Consul's reset, before the %v grace", held, tt.grace)
			}
		})
	}
}

func TestWatcherRunTwice(t *testing.T) {
	consul := startFakeConsul(t, meshData())
	w := startWatcher(t, fastConfig(Config{Client: consul.client}))
	waitSnapshot(t, w, "api and web", hasProxies("api-1-sidecar-proxy", "web-1-sidecar-proxy"))
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}

func TestPublishIsLatestWins(t *testing.T) {
	w, err := New(Config{Client: &api.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 3; v++ {
		w.publish(&catalog.Snapshot{Version: v})
	}
	if got := (<-w.Snapshots()).Version; got != 3 {
		t.Errorf("received version %d, want the latest, 3", got)
	}
	expectNoSnapshot(t, w)
	if got := w.Current().Version; got != 3 {
		t.Errorf("Current().Version = %d, want 3", got)
	}
}
