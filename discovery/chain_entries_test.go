package discovery

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

func TestConvertServiceResolvers(t *testing.T) {
	tests := []struct {
		name  string
		entry *api.ServiceResolverConfigEntry
		want  *catalog.ServiceResolver
	}{{
		name: "subsets, timeouts and load balancer",
		entry: &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", DefaultSubset: "v1",
			Subsets: map[string]api.ServiceResolverSubset{
				"v1": {Filter: "Service.Meta.version == v1"},
				"v2": {Filter: "Service.Meta.version == v2", OnlyPassing: true},
			},
			ConnectTimeout: time.Second, RequestTimeout: 3 * time.Second,
			LoadBalancer: &api.LoadBalancer{Policy: "ring_hash", RingHashConfig: &api.RingHashConfig{MinimumRingSize: 10, MaximumRingSize: 20},
				HashPolicies: []api.HashPolicy{
					{Field: "cookie", FieldValue: "s", CookieConfig: &api.CookieConfig{TTL: time.Minute, Path: "/"}},
					{SourceIP: true, Terminal: true},
				}},
		},
		want: &catalog.ServiceResolver{Name: "api", DefaultSubset: "v1",
			Subsets: map[string]catalog.ResolverSubset{
				"v1": {Filter: "Service.Meta.version == v1"},
				"v2": {Filter: "Service.Meta.version == v2", OnlyPassing: true},
			},
			ConnectTimeout: time.Second, RequestTimeout: 3 * time.Second,
			LoadBalancer: &catalog.LoadBalancer{Policy: "ring_hash", MinRingSize: 10, MaxRingSize: 20,
				HashPolicies: []catalog.HashPolicy{
					{Field: "cookie", FieldValue: "s", Cookie: &catalog.CookieConfig{TTL: time.Minute, Path: "/"}},
					{SourceIP: true, Terminal: true},
				}},
		},
	}, {
		name: "least_request and redirect",
		entry: &api.ServiceResolverConfigEntry{Name: "api", Redirect: &api.ServiceResolverRedirect{Service: "api-v2", ServiceSubset: "blue", Datacenter: "dc2", Namespace: "default"},
			LoadBalancer: &api.LoadBalancer{Policy: "least_request", LeastRequestConfig: &api.LeastRequestConfig{ChoiceCount: 3}}},
		want: &catalog.ServiceResolver{Name: "api", Redirect: &catalog.ResolverTarget{Service: "api-v2", ServiceSubset: "blue", Datacenter: "dc2"},
			LoadBalancer: &catalog.LoadBalancer{Policy: "least_request", ChoiceCount: 3}},
	}, {
		name: "failover forms become targets",
		entry: &api.ServiceResolverConfigEntry{Name: "api", Failover: map[string]api.ServiceResolverFailover{
			"*":  {Datacenters: []string{"dc2", "dc3"}},
			"v1": {Service: "api-backup"},
			"v2": {Targets: []api.ServiceResolverFailoverTarget{{ServiceSubset: "v1"}, {Service: "api-backup", Datacenter: "dc2"}}},
			"v3": {Policy: &api.ServiceResolverFailoverPolicy{Mode: "sequential"}, ServiceSubset: "v1"},
		}},
		want: &catalog.ServiceResolver{Name: "api", Failover: map[string]catalog.ResolverFailover{
			"*":  {Targets: []catalog.ResolverTarget{{Datacenter: "dc2"}, {Datacenter: "dc3"}}},
			"v1": {Targets: []catalog.ResolverTarget{{Service: "api-backup"}}},
			"v2": {Targets: []catalog.ResolverTarget{{ServiceSubset: "v1"}, {Service: "api-backup", Datacenter: "dc2"}}},
			"v3": {Targets: []catalog.ResolverTarget{{ServiceSubset: "v1"}}},
		}},
	}, {
		name: "failover to a peer's service",
		entry: &api.ServiceResolverConfigEntry{Name: "api", Failover: map[string]api.ServiceResolverFailover{
			"*": {Targets: []api.ServiceResolverFailoverTarget{{Datacenter: "dc2"}, {Peer: "east"}, {Service: "api-b", Peer: "west"}}},
		}},
		want: &catalog.ServiceResolver{Name: "api", Failover: map[string]catalog.ResolverFailover{
			"*": {Targets: []catalog.ResolverTarget{{Datacenter: "dc2"}, {Peer: "east"}, {Service: "api-b", Peer: "west"}}},
		}},
	}, {
		name: "a redirect to a peer, partitions, sameness groups and locality are unsupported",
		entry: &api.ServiceResolverConfigEntry{Name: "api",
			Redirect: &api.ServiceResolverRedirect{Peer: "east"},
			Failover: map[string]api.ServiceResolverFailover{
				"*":  {SamenessGroup: "sg", Policy: &api.ServiceResolverFailoverPolicy{Mode: "order-by-locality"}},
				"v1": {Targets: []api.ServiceResolverFailoverTarget{{Partition: "p1"}, {Namespace: "ns"}}},
			},
			PrioritizeByLocality: &api.ServiceResolverPrioritizeByLocality{Mode: "failover"},
		},
		want: &catalog.ServiceResolver{Name: "api",
			Redirect: &catalog.ResolverTarget{},
			Failover: map[string]catalog.ResolverFailover{"*": {}, "v1": {Targets: []catalog.ResolverTarget{{}, {}}}},
			Unsupported: []string{
				`Redirect.Peer = "east"`,
				`Failover["*"].SamenessGroup = "sg"`,
				`Failover["*"].Policy.Mode = "order-by-locality"`,
				`Failover["v1"].Targets[0].Partition = "p1"`,
				`Failover["v1"].Targets[1].Namespace = "ns"`,
				`PrioritizeByLocality.Mode = "failover"`,
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := convertServiceResolvers([]api.ConfigEntry{tt.entry, &api.ServiceSplitterConfigEntry{Name: "other-kind"}})
			if diff := cmp.Diff(map[string]*catalog.ServiceResolver{tt.want.Name: tt.want}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertServiceSplitters(t *testing.T) {
	got := convertServiceSplitters([]api.ConfigEntry{&api.ServiceSplitterConfigEntry{Name: "api", Splits: []api.ServiceSplit{
		{Weight: 90, ServiceSubset: "v1", RequestHeaders: &api.HTTPHeaderModifiers{Set: map[string]string{"x-v": "1"}}},
		{Weight: 10, Service: "api-next", ResponseHeaders: &api.HTTPHeaderModifiers{Remove: []string{"server"}}, RequestHeaders: &api.HTTPHeaderModifiers{}},
		{Weight: 0, Service: "api-east", Partition: "east"},
	}}})
	want := map[string]*catalog.ServiceSplitter{"api": {Name: "api", Splits: []catalog.Split{
		{Weight: 90, ServiceSubset: "v1", RequestHeaders: &catalog.HeaderModifiers{Set: map[string]string{"x-v": "1"}}},
		{Weight: 10, Service: "api-next", ResponseHeaders: &catalog.HeaderModifiers{Remove: []string{"server"}}},
		{Weight: 0, Service: "api-east"},
	}, Unsupported: []string{`Splits[2].Partition = "east"`}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConvertServiceRouters(t *testing.T) {
	got := convertServiceRouters([]api.ConfigEntry{&api.ServiceRouterConfigEntry{Name: "api", Routes: []api.ServiceRoute{
		{
			Match: &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{PathPrefix: "/admin", CaseInsensitive: true, Methods: []string{"GET"},
				Header:     []api.ServiceRouteHTTPMatchHeader{{Name: "x-debug", Present: true}, {Name: "x-user", Regex: "^a", Invert: true}},
				QueryParam: []api.ServiceRouteHTTPMatchQueryParam{{Name: "beta", Exact: "1"}}}},
			Destination: &api.ServiceRouteDestination{Service: "admin", ServiceSubset: "v2", PrefixRewrite: "/",
				RequestTimeout: 2 * time.Second, IdleTimeout: time.Minute, NumRetries: 3, RetryOnConnectFailure: true,
				RetryOn: []string{"5xx"}, RetryOnStatusCodes: []uint32{503},
				RequestHeaders: &api.HTTPHeaderModifiers{Add: map[string]string{"a": "1"}}},
		},
		{Match: &api.ServiceRouteMatch{}, Destination: &api.ServiceRouteDestination{Namespace: "other"}},
		{},
	}}})
	want := map[string]*catalog.ServiceRouter{"api": {Name: "api", Routes: []catalog.ServiceRoute{
		{
			Match: &catalog.RouteHTTPMatch{PathPrefix: "/admin", CaseInsensitive: true, Methods: []string{"GET"},
				Headers:     []catalog.RouteHeaderMatch{{Name: "x-debug", Present: true}, {Name: "x-user", Regex: "^a", Invert: true}},
				QueryParams: []catalog.RouteQueryParamMatch{{Name: "beta", Exact: "1"}}},
			Destination: &catalog.RouteDestination{Service: "admin", ServiceSubset: "v2", PrefixRewrite: "/",
				RequestTimeout: 2 * time.Second, IdleTimeout: time.Minute, NumRetries: 3, RetryOnConnectFailure: true,
				RetryOn: []string{"5xx"}, RetryOnStatusCodes: []uint32{503},
				RequestHeaders: &catalog.HeaderModifiers{Add: map[string]string{"a": "1"}}},
		},
		{Destination: &catalog.RouteDestination{}},
		{},
	}, Unsupported: []string{`Routes[1].Destination.Namespace = "other"`}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
