package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func httpDefaults(names ...string) []api.ConfigEntry {
	var out []api.ConfigEntry
	for _, n := range names {
		out = append(out, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: n, Protocol: "http"})
	}
	return out
}

func versionSubsets() map[string]api.ServiceResolverSubset {
	return map[string]api.ServiceResolverSubset{
		"v1": {Filter: "Service.Meta.version == v1"},
		"v2": {Filter: "Service.Meta.version == v2"},
	}
}

func apiV1V2() []instance {
	return []instance{
		{id: "api-1", service: "api", meta: map[string]string{"version": "v1"}, handler: named("api-1")},
		{id: "api-2", service: "api", meta: map[string]string{"version": "v2"}, handler: named("api-2")},
	}
}

// tally sends n requests with header and counts answers by body (or by
// x-weft-error reason for the sidecar's own answers, or "error").
func (m *mesh) tallyL7(t *testing.T, n, concurrency int, header map[string]string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			client := &http.Client{}
			for range work {
				r := m.do(client, "/", header)
				key := r.body
				switch {
				case r.err != nil:
					key = "error: " + r.err.Error()
				case r.reason != "":
					key = "x-weft-error: " + r.reason
				case r.code != http.StatusOK:
					key = http.StatusText(r.code)
				}
				mu.Lock()
				seen[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return seen
}

// TestSplitterWeights splits api 90/10 between subsets by metadata.
func TestSplitterWeights(t *testing.T) {
	m := l7Mesh(t, apiV1V2(), append(httpDefaults("api", "web"),
		&api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", Subsets: versionSubsets()},
		&api.ServiceSplitterConfigEntry{Kind: api.ServiceSplitter, Name: "api", Splits: []api.ServiceSplit{
			{Weight: 90, ServiceSubset: "v1"}, {Weight: 10, ServiceSubset: "v2"},
		}})...)
	m.waitServedOnly(t, nil, 1, "api-1")
	m.waitServedOnly(t, nil, 1, "api-2")
	seen := m.tallyL7(t, 1000, 4, nil)
	if seen["api-1"]+seen["api-2"] != 1000 || seen["api-1"] < 860 || seen["api-1"] > 940 {
		t.Fatalf("1,000 requests under a 90/10 split landed %v; want api-1 within 900 ± 40", seen)
	}
}

// TestRouterHeaderToSubset routes requests carrying x-version: v2 to the
// v2 subset only.
func TestRouterHeaderToSubset(t *testing.T) {
	m := l7Mesh(t, apiV1V2(), append(httpDefaults("api", "web"),
		&api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", Subsets: versionSubsets(), DefaultSubset: "v1"},
		&api.ServiceRouterConfigEntry{Kind: api.ServiceRouter, Name: "api", Routes: []api.ServiceRoute{{
			Match:       &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{Header: []api.ServiceRouteHTTPMatchHeader{{Name: "x-version", Exact: "v2"}}}},
			Destination: &api.ServiceRouteDestination{ServiceSubset: "v2"},
		}}})...)
	v2 := map[string]string{"x-version": "v2"}
	m.waitServedOnly(t, v2, 1, "api-2")
	if seen := m.tallyL7(t, 200, 4, v2); seen["api-2"] != 200 {
		t.Fatalf("requests with x-version: v2 landed %v; want all on api-2", seen)
	}
	if seen := m.tallyL7(t, 200, 4, nil); seen["api-1"] != 200 {
		t.Fatalf("requests without the header landed %v; want all on the default subset (api-1)", seen)
	}
}

// TestLeastRequestAvoidsSlowInstance makes one instance take 100 ms: at
// concurrency 16 it must get at most 20 % of requests.
func TestLeastRequestAvoidsSlowInstance(t *testing.T) {
	m := l7Mesh(t, []instance{
		{id: "api-1", service: "api", handler: slow("api-1", 100*time.Millisecond)},
		{id: "api-2", service: "api", handler: named("api-2")},
	}, append(httpDefaults("api", "web"),
		&api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", LoadBalancer: &api.LoadBalancer{
			Policy: "least_request", LeastRequestConfig: &api.LeastRequestConfig{ChoiceCount: 2},
		}})...)
	m.waitServedOnly(t, nil, 1, "api-1")
	seen := m.tallyL7(t, 1000, 16, nil)
	if seen["api-1"]+seen["api-2"] != 1000 || seen["api-1"] > 200 {
		t.Fatalf("1,000 requests at concurrency 16 landed %v; want the slow api-1 ≤ 200", seen)
	}
}

// TestRingHashSticks hashes on a header: each user sticks to one instance.
func TestRingHashSticks(t *testing.T) {
	m := l7Mesh(t, apiV1V2(), append(httpDefaults("api", "web"),
		&api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", LoadBalancer: &api.LoadBalancer{
			Policy: "ring_hash", HashPolicies: []api.HashPolicy{{Field: "header", FieldValue: "x-user"}},
		}})...)
	m.waitEndpoints(t, "web-1-sidecar-proxy", 2)
	m.waitServedOnly(t, map[string]string{"x-user": "warmup"}, 1, "api-1", "api-2")
	instances := map[string]bool{}
	// 16 users × 64 requests: all users on one of two instances by
	// chance is a 2⁻¹⁵ event, not a flake.
	users := []string{"ada", "grace", "alan", "edsger", "barbara", "ken", "dennis", "margaret",
		"donald", "frances", "john", "radia", "tony", "leslie", "niklaus", "sophie"}
	for _, user := range users {
		seen := m.tallyL7(t, 64, 4, map[string]string{"x-user": user})
		if len(seen) != 1 {
			t.Fatalf("user %s spread over %v; want one instance for all 64 requests", user, seen)
		}
		for k := range seen {
			instances[k] = true
		}
	}
	if len(instances) != 2 {
		t.Errorf("%d users all hashed to %v; want both instances used", len(users), instances)
	}
}
