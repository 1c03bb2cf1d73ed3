package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func ptrOf[T any](v T) *T { return &v }

// webUpstreams configures web's upstream limits and passive health checks,
// which Consul keeps in the downstream's service-defaults.
func webUpstreams(limits *api.UpstreamLimits, phc *api.PassiveHealthCheck) *api.ServiceConfigEntry {
	return &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "web", Protocol: "http",
		UpstreamConfig: &api.UpstreamConfiguration{Defaults: &api.UpstreamConfig{Limits: limits, PassiveHealthCheck: phc}}}
}

// TestMaxConcurrentRequestsOverflow caps concurrent requests at 2: the
// excess is refused with x-weft-error: overflow.
func TestMaxConcurrentRequestsOverflow(t *testing.T) {
	m := l7Mesh(t, []instance{{id: "api-1", service: "api", handler: slow("api-1", 300*time.Millisecond)}},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"},
		webUpstreams(&api.UpstreamLimits{MaxConcurrentRequests: ptrOf(2)}, nil))
	m.waitServedOnly(t, nil, 1, "api-1")
	seen := m.tallyL7(t, 40, 10, nil)
	if seen["x-weft-error: overflow"] == 0 || seen["api-1"] == 0 {
		t.Fatalf("10 concurrent requests with max_concurrent_requests=2 gave %v; want some served and some refused with overflow", seen)
	}
	if seen["api-1"]+seen["x-weft-error: overflow"] != 40 {
		t.Fatalf("unexpected answers: %v", seen)
	}
}

// TestBreakerFailsFast trips the per-host breaker of an always-failing
// instance; while open, the sidecar answers circuit_open in under 5 ms.
func TestBreakerFailsFast(t *testing.T) {
	m := l7Mesh(t, []instance{{id: "api-1", service: "api", handler: failing("api-1")}},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"},
		webUpstreams(nil, &api.PassiveHealthCheck{Interval: time.Second, MaxFailures: 3, BaseEjectionTime: ptrOf(30 * time.Second)}))
	client := &http.Client{}
	deadline := time.Now().Add(30 * time.Second)
	var r result
	for {
		r = m.do(client, "/", nil)
		if r.reason == "circuit_open" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker never opened; last answer %+v", r)
		}
	}
	before := m.hits["api-1"].Load()
	took := make([]time.Duration, 0, 21)
	for i := range 21 {
		r = m.do(client, "/", nil)
		if r.reason != "circuit_open" || r.code != http.StatusServiceUnavailable {
			t.Fatalf("request %d while open: %+v; want 503 circuit_open", i, r)
		}
		took = append(took, r.took)
	}
	// The median, measured from this process through the client sidecar,
	// must be under 5 ms; single requests may be slower on a loaded CI
	// machine (race detector on), but none may wait for the upstream.
	slices.Sort(took)
	if median := took[len(took)/2]; median > 5*time.Millisecond {
		t.Errorf("median answer while open %v; want < 5ms (all: %v)", median, took)
	}
	if slowest := took[len(took)-1]; slowest > 100*time.Millisecond {
		t.Errorf("slowest answer while open %v; want fail-fast, far below any upstream timeout", slowest)
	}
	if n := m.hits["api-1"].Load() - before; n != 0 {
		t.Fatalf("%d requests reached the failing instance while its breaker was open", n)
	}
}

// TestRetriesAndOutlierHideFlakyInstance: one of two instances fails half
// its requests; retries and outlier ejection keep client success ≥ 99.5 %.
func TestRetriesAndOutlierHideFlakyInstance(t *testing.T) {
	m := l7Mesh(t, []instance{
		{id: "api-1", service: "api", handler: flaky("api-1")},
		{id: "api-2", service: "api", handler: named("api-2")},
	},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"},
		webUpstreams(nil, &api.PassiveHealthCheck{Interval: time.Second, MaxFailures: 3, BaseEjectionTime: ptrOf(30 * time.Second),
			MaxEjectionPercent: ptrOf(uint32(50))}),
		&api.ServiceRouterConfigEntry{Kind: api.ServiceRouter, Name: "api", Routes: []api.ServiceRoute{{
			Match:       &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{PathPrefix: "/"}},
			Destination: &api.ServiceRouteDestination{NumRetries: 3, RetryOnStatusCodes: []uint32{503}},
		}}})
	m.waitServedOnly(t, nil, 1, "api-2")
	seen := m.tallyL7(t, 1000, 4, nil)
	if ok := seen["api-1"] + seen["api-2"]; ok < 995 {
		t.Fatalf("1,000 requests with a flaky instance: %v; want ≥ 995 successes", seen)
	}
}

// TestBlackholedInstance: an instance that accepts and never answers gets
// timeouts (504 upstream_timeout, on time) and is then ejected.
func TestBlackholedInstance(t *testing.T) {
	m := l7Mesh(t, []instance{
		{id: "api-1", service: "api"}, // black hole
		{id: "api-2", service: "api", handler: named("api-2")},
	},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"},
		webUpstreams(nil, &api.PassiveHealthCheck{Interval: time.Second, MaxFailures: 2, BaseEjectionTime: ptrOf(60 * time.Second),
			MaxEjectionPercent: ptrOf(uint32(50))}),
		&api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", RequestTimeout: 500 * time.Millisecond})
	client := &http.Client{}
	timeouts := 0
	deadline := time.Now().Add(30 * time.Second)
	streak := 0
	for streak < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("black-holed instance never ejected: %d timeouts, streak %d", timeouts, streak)
		}
		r := m.do(client, "/", nil)
		if r.took > 1500*time.Millisecond {
			t.Fatalf("request took %v; the 500ms request timeout did not hold", r.took)
		}
		switch {
		case r.err == nil && r.code == http.StatusOK && r.body == "api-2":
			streak++
		case r.reason == "upstream_timeout" && r.code == http.StatusGatewayTimeout:
			timeouts++
			streak = 0
		default:
			t.Fatalf("unexpected answer %+v", r)
		}
	}
	if timeouts == 0 {
		t.Fatal("no request ever reached the black hole; the test proved nothing")
	}
}

// TestFailoverToBackupService sends api's traffic to api-backup when every
// api instance is unhealthy.
func TestFailoverToBackupService(t *testing.T) {
	m := l7Mesh(t, []instance{
		{id: "api-1", service: "api", handler: named("api-1")},
		{id: "backup-1", service: "api-backup", handler: named("backup-1")},
	}, append(httpDefaults("api", "api-backup", "web"),
		&api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", ConnectTimeout: 2 * time.Second,
			Failover: map[string]api.ServiceResolverFailover{"*": {Service: "api-backup"}}})...)
	m.waitServedOnly(t, nil, 5, "api-1")
	m.setHealth(t, "api-1", false)
	m.waitServedOnly(t, nil, 20, "backup-1")
	m.setHealth(t, "api-1", true)
	m.waitServedOnly(t, nil, 20, "api-1")
}
