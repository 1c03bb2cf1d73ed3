package discovery

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/consultest"
)

// TestConsulDiscoveryChainEntries writes service-resolver, -splitter and
// -router entries and a service-defaults upstream_config to a real Consul
// and sees them, and the tags and metadata subsets filter on, in
// snapshots.
func TestConsulDiscoveryChainEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Consul agent")
	}
	srv := consultest.Start(t)
	client := srv.Client()
	register(t, client, instance{service: "api", id: "api-1", port: 8081, sidecarPort: 21001,
		tags: []string{"primary"}, meta: map[string]string{"version": "v1"}})
	register(t, client, instance{service: "api", id: "api-2", port: 8082, sidecarPort: 21002,
		tags: []string{"canary"}, meta: map[string]string{"version": "v2"}})
	w := startWatcher(t, fastConfig(Config{Client: client}))
	snap := waitSnapshot(t, w, "api passing", func(s *catalog.Snapshot) bool { return allPassing(s, "api", 2) })
	// A sidecar_service inherits its service's tags and metadata.
	wantTags := []struct {
		tags    []string
		version string
	}{{[]string{"primary"}, "v1"}, {[]string{"canary"}, "v2"}}
	for i, e := range snap.Endpoints["api"] {
		if want := wantTags[i]; !cmp.Equal(e.Tags, want.tags) || e.Meta["version"] != want.version {
			t.Errorf("endpoint %s: tags %v, meta %v; want the service's %v and version %s", e.ProxyID, e.Tags, e.Meta, want.tags, want.version)
		}
	}

	for _, name := range []string{"api", "api-next"} {
		setEntry(t, client, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: name, Protocol: "http"})
	}
	setEntry(t, client, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "web", UpstreamConfig: &api.UpstreamConfiguration{
		Defaults:  &api.UpstreamConfig{ConnectTimeoutMs: 1500, Limits: &api.UpstreamLimits{MaxConnections: ptr(50)}},
		Overrides: []*api.UpstreamConfig{{Name: "api", PassiveHealthCheck: &api.PassiveHealthCheck{Interval: 5 * time.Second, MaxFailures: 3}}},
	}})
	setEntry(t, client, &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", DefaultSubset: "v1",
		Subsets: map[string]api.ServiceResolverSubset{
			"v1": {Filter: "Service.Meta.version == v1"},
			"v2": {Filter: `"canary" in Service.Tags`, OnlyPassing: true},
		},
		Failover:       map[string]api.ServiceResolverFailover{"*": {Service: "api-next"}},
		ConnectTimeout: 2 * time.Second,
		LoadBalancer:   &api.LoadBalancer{Policy: "least_request", LeastRequestConfig: &api.LeastRequestConfig{ChoiceCount: 3}},
	})
	setEntry(t, client, &api.ServiceSplitterConfigEntry{Kind: api.ServiceSplitter, Name: "api", Splits: []api.ServiceSplit{
		{Weight: 90, ServiceSubset: "v1"},
		{Weight: 10, ServiceSubset: "v2", RequestHeaders: &api.HTTPHeaderModifiers{Set: map[string]string{"x-canary": "1"}}},
	}})
	setEntry(t, client, &api.ServiceRouterConfigEntry{Kind: api.ServiceRouter, Name: "api", Routes: []api.ServiceRoute{{
		Match:       &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{PathPrefix: "/next/", Methods: []string{"GET"}}},
		Destination: &api.ServiceRouteDestination{Service: "api-next", NumRetries: 2, RetryOn: []string{"5xx"}, RequestTimeout: 3 * time.Second},
	}}})

	snap = waitSnapshot(t, w, "the chain entries of api", func(s *catalog.Snapshot) bool {
		return s.ServiceResolvers["api"] != nil && s.ServiceSplitters["api"] != nil && s.ServiceRouters["api"] != nil &&
			s.ServiceDefaults["web"] != nil
	})
	wantResolver := &catalog.ServiceResolver{Name: "api", DefaultSubset: "v1",
		Subsets: map[string]catalog.ResolverSubset{
			"v1": {Filter: "Service.Meta.version == v1"},
			"v2": {Filter: `"canary" in Service.Tags`, OnlyPassing: true},
		},
		Failover:       map[string]catalog.ResolverFailover{"*": {Targets: []catalog.ResolverTarget{{Service: "api-next"}}}},
		ConnectTimeout: 2 * time.Second,
		LoadBalancer:   &catalog.LoadBalancer{Policy: "least_request", ChoiceCount: 3},
	}
	wantSplitter := &catalog.ServiceSplitter{Name: "api", Splits: []catalog.Split{
		{Weight: 90, ServiceSubset: "v1"},
		{Weight: 10, ServiceSubset: "v2", RequestHeaders: &catalog.HeaderModifiers{Set: map[string]string{"x-canary": "1"}}},
	}}
	wantRouter := &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{{
		Match:       &catalog.RouteHTTPMatch{PathPrefix: "/next/", Methods: []string{"GET"}},
		Destination: &catalog.RouteDestination{Service: "api-next", NumRetries: 2, RetryOn: []string{"5xx"}, RequestTimeout: 3 * time.Second},
	}}}
	wantUpstreams := &catalog.UpstreamConfiguration{
		Defaults: &catalog.UpstreamConfig{ConnectTimeout: 1500 * time.Millisecond, Limits: &catalog.UpstreamLimits{MaxConnections: ptr(50)}},
		Overrides: map[string]*catalog.UpstreamConfig{"api": {
			PassiveHealthCheck: &catalog.PassiveHealthCheck{Interval: 5 * time.Second, MaxFailures: 3},
		}},
	}
	for _, c := range []struct {
		what      string
		want, got any
	}{
		{"service-resolver", wantResolver, snap.ServiceResolvers["api"]},
		{"service-splitter", wantSplitter, snap.ServiceSplitters["api"]},
		{"service-router", wantRouter, snap.ServiceRouters["api"]},
		{"upstream_config of web", wantUpstreams, snap.ServiceDefaults["web"].UpstreamConfig},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.what, diff)
		}
	}

	// Deleting an entry removes it from the next snapshot.
	if _, err := client.ConfigEntries().Delete(api.ServiceRouter, "api", nil); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, w, "router deleted", func(s *catalog.Snapshot) bool {
		return s.ServiceRouters["api"] == nil && s.ServiceSplitters["api"] != nil
	})
}
