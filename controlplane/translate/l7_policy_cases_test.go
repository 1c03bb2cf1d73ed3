package translate

import (
	"github.com/weft-mesh/weft/catalog"
)

// policyCases pin load balancing, limits and passive health checks,
// retries and timeouts, and how bad entries and config are reported.
func policyCases() []goldenCase {
	return []goldenCase{
		{
			// Every load-balancing policy; ring_hash with every kind of
			// hash policy on its route.
			name: "l7_lb_policies",
			snap: l7Snap([]catalog.Upstream{up("api", 9191), up("billing", 9192), up("cache", 9193), up("search", 9194), up("auth", 9195)}, func(s *catalog.Snapshot) {
				lb := func(name string, l *catalog.LoadBalancer) {
					s.ServiceResolvers[name] = &catalog.ServiceResolver{Name: name, LoadBalancer: l}
				}
				lb("api", &catalog.LoadBalancer{Policy: catalog.LBRingHash, MinRingSize: 1024, MaxRingSize: 8192, HashPolicies: []catalog.HashPolicy{
					{Field: catalog.HashHeader, FieldValue: "x-user"},
					{Field: catalog.HashCookie, FieldValue: "session-id", Cookie: &catalog.CookieConfig{TTL: seconds(3600), Path: "/"}},
					{Field: catalog.HashCookie, FieldValue: "sticky", Cookie: &catalog.CookieConfig{Session: true}},
					{Field: catalog.HashQueryParam, FieldValue: "tenant", Terminal: true},
					{SourceIP: true},
				}})
				lb("billing", &catalog.LoadBalancer{Policy: catalog.LBLeastRequest, ChoiceCount: 4})
				lb("cache", &catalog.LoadBalancer{Policy: catalog.LBMaglev, HashPolicies: []catalog.HashPolicy{{Field: catalog.HashHeader, FieldValue: "x-key"}}})
				lb("search", &catalog.LoadBalancer{Policy: catalog.LBRandom})
				lb("auth", &catalog.LoadBalancer{Policy: catalog.LBRoundRobin})
			}),
		},
		{
			// web's service-defaults upstream_config: Defaults for every
			// upstream, an Override for billing (its Limits replace the
			// defaults' whole), and cache's own config in the registration
			// over both. The tcp upstream db gets limits but no retry
			// budget.
			name: "l7_limits_outlier",
			snap: l7Snap([]catalog.Upstream{up("api", 9191), up("billing", 9192), {
				DestinationName: "cache", LocalBindAddress: "127.0.0.1", LocalBindPort: 9193,
				Config: &catalog.UpstreamConfig{ConnectTimeout: seconds(0.5), PassiveHealthCheck: &catalog.PassiveHealthCheck{MaxFailures: 3}},
			}, up("db", 5432)}, func(s *catalog.Snapshot) {
				protocols(s, catalog.ProtocolTCP, "db")
				s.ServiceDefaults["web"] = &catalog.ServiceDefaults{Name: "web", UpstreamConfig: &catalog.UpstreamConfiguration{
					Defaults: &catalog.UpstreamConfig{
						ConnectTimeout: seconds(2),
						Limits:         &catalog.UpstreamLimits{MaxConnections: ptr(100), MaxPendingRequests: ptr(50), MaxConcurrentRequests: ptr(200)},
						PassiveHealthCheck: &catalog.PassiveHealthCheck{Interval: seconds(10), MaxFailures: 5,
							EnforcingConsecutive5xx: ptr[uint32](100), MaxEjectionPercent: ptr[uint32](50), BaseEjectionTime: ptr(seconds(30))},
					},
					Overrides: map[string]*catalog.UpstreamConfig{"billing": {Limits: &catalog.UpstreamLimits{MaxConnections: ptr(10)}}},
				}}
			}),
		},
		{
			// Router destinations with retries, timeouts, a prefix rewrite
			// and header changes; the catch-all route takes api's
			// resolver's request timeout, its cluster the resolver's
			// connect timeout.
			name: "l7_retries_timeouts",
			snap: l7Snap([]catalog.Upstream{up("api", 9191)}, func(s *catalog.Snapshot) {
				s.ServiceResolvers["api"] = &catalog.ServiceResolver{Name: "api", ConnectTimeout: seconds(1), RequestTimeout: seconds(10)}
				s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/orders/"}, Destination: &catalog.RouteDestination{
						PrefixRewrite: "/v2/orders/", RequestTimeout: seconds(3), IdleTimeout: seconds(30),
						NumRetries: 3, RetryOnConnectFailure: true, RetryOn: []string{"5xx", "reset"}, RetryOnStatusCodes: []uint32{503, 429},
						RequestHeaders:  &catalog.HeaderModifiers{Add: map[string]string{"X-Trace": "on"}, Set: map[string]string{"x-tier": "gold"}, Remove: []string{"Cookie"}},
						ResponseHeaders: &catalog.HeaderModifiers{Set: map[string]string{"cache-control": "no-store"}, Remove: []string{"server"}},
					}},
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/reports/"}, Destination: &catalog.RouteDestination{RequestTimeout: -1, IdleTimeout: -1, NumRetries: 2}},
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/quick/"}, Destination: &catalog.RouteDestination{RetryOnConnectFailure: true}},
				}}
			}),
		},
		{
			// Each upstream's entries are broken in one way; each falls
			// back to what still works and says why.
			name: "l7_bad_entries",
			snap: l7Snap([]catalog.Upstream{
				up("api", 9191), up("billing", 9192), up("cache", 9193), up("search", 9194),
				up("auth", 9195), up("db", 9196), up("images", 9197), up("video", 9198), up("reports", 9199),
			}, badEntries),
		},
		{
			// Config that Envoy would reject is left out with a problem
			// naming its source; two upstreams reaching one cluster with
			// different settings keep the first's.
			name: "l7_bad_upstream_config",
			snap: l7Snap([]catalog.Upstream{{
				DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191,
				ConfigProblems: []string{`limits.max_connections: expected a number, got "ten"`},
			}, up("api-next", 9192), up("cache", 9193)}, func(s *catalog.Snapshot) {
				s.ServiceDefaults["web"] = &catalog.ServiceDefaults{Name: "web",
					Unsupported: []string{`UpstreamConfig.Overrides[1].Peer = "other"`},
					UpstreamConfig: &catalog.UpstreamConfiguration{
						Defaults: &catalog.UpstreamConfig{Limits: &catalog.UpstreamLimits{MaxConnections: ptr(-1), MaxPendingRequests: ptr(5)},
							PassiveHealthCheck: &catalog.PassiveHealthCheck{MaxEjectionPercent: ptr[uint32](150), EnforcingConsecutive5xx: ptr[uint32](0)}},
						Overrides: map[string]*catalog.UpstreamConfig{"api-next": {Limits: &catalog.UpstreamLimits{MaxConnections: ptr(7)}}},
					}}
				s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/next/"}, Destination: &catalog.RouteDestination{Service: "api-next"}},
				}}
			}),
		},
	}
}

// badEntries breaks the chain of each upstream of l7_bad_entries:
//   - api: a route to a subset that does not exist (its resolver applies);
//   - billing: an invalid subset filter on the default subset;
//   - cache: splitters that loop;
//   - search: resolver redirects that loop;
//   - auth: a redirect to a peer;
//   - db: a router on a tcp service;
//   - images: an invalid path regex;
//   - video: a split to a service of another protocol;
//   - reports: a prefix rewrite on a regex match.
func badEntries(s *catalog.Snapshot) {
	protocols(s, catalog.ProtocolTCP, "db")
	protocols(s, catalog.ProtocolGRPC, "video-hd")
	s.ServiceResolvers["api"] = &catalog.ServiceResolver{Name: "api", DefaultSubset: "v1", Subsets: versionSubsets().Subsets}
	s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{
		{Match: &catalog.RouteHTTPMatch{PathPrefix: "/v9/"}, Destination: &catalog.RouteDestination{ServiceSubset: "v9"}},
	}}
	s.ServiceResolvers["billing"] = &catalog.ServiceResolver{Name: "billing", DefaultSubset: "new", Subsets: map[string]catalog.ResolverSubset{
		"new": {Filter: "Service.Meta.version =="},
	}}
	s.ServiceSplitters["cache"] = &catalog.ServiceSplitter{Name: "cache", Splits: []catalog.Split{{Weight: 100, Service: "cache-a"}}}
	s.ServiceSplitters["cache-a"] = &catalog.ServiceSplitter{Name: "cache-a", Splits: []catalog.Split{{Weight: 100, Service: "cache"}}}
	s.ServiceResolvers["search"] = &catalog.ServiceResolver{Name: "search", Redirect: &catalog.ResolverTarget{Service: "search-b"}}
	s.ServiceResolvers["search-b"] = &catalog.ServiceResolver{Name: "search-b", Redirect: &catalog.ResolverTarget{Service: "search"}}
	s.ServiceResolvers["auth"] = &catalog.ServiceResolver{Name: "auth", Unsupported: []string{`Redirect.Peer = "other"`}}
	s.ServiceRouters["db"] = &catalog.ServiceRouter{Name: "db"}
	s.ServiceRouters["images"] = &catalog.ServiceRouter{Name: "images", Routes: []catalog.ServiceRoute{
		{Match: &catalog.RouteHTTPMatch{PathRegex: "/(thumbs"}},
	}}
	s.ServiceSplitters["video"] = &catalog.ServiceSplitter{Name: "video", Splits: []catalog.Split{{Weight: 50}, {Weight: 50, Service: "video-hd"}}}
	s.ServiceRouters["reports"] = &catalog.ServiceRouter{Name: "reports", Routes: []catalog.ServiceRoute{
		{Match: &catalog.RouteHTTPMatch{PathRegex: "^/r/"}, Destination: &catalog.RouteDestination{PrefixRewrite: "/"}},
	}}
}
