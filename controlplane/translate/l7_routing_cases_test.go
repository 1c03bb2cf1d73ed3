package translate

import (
	"github.com/weft-mesh/weft/catalog"
)

func l7Cases() []goldenCase {
	return append(routingCases(), policyCases()...)
}

// routingCases pin protocols, splitting, routing, subsets, redirects and
// failover.
func routingCases() []goldenCase {
	return []goldenCase{
		{
			// web is a grpc service (h2c to its app); api speaks http2,
			// billing grpc (both HTTP/2, ALPN h2), cache http (HTTP/1.1).
			name: "l7_http2_grpc",
			snap: l7Snap([]catalog.Upstream{up("api", 9191), up("billing", 9192), up("cache", 9193)}, func(s *catalog.Snapshot) {
				protocols(s, catalog.ProtocolGRPC, "web", "billing")
				protocols(s, catalog.ProtocolHTTP2, "api")
			}),
			mesh: testMesh,
		},
		{
			// 80 % to subset v1 of api; 20 % to api-canary, whose own
			// splitter is flattened: half to subset v2 of api, half to
			// api-next. Header changes of both levels merge.
			name: "l7_splitter",
			snap: l7Snap([]catalog.Upstream{up("api", 9191)}, func(s *catalog.Snapshot) {
				s.ServiceResolvers["api"] = versionSubsets()
				s.ServiceSplitters["api"] = &catalog.ServiceSplitter{Name: "api", Splits: []catalog.Split{
					{Weight: 80, ServiceSubset: "v1", RequestHeaders: &catalog.HeaderModifiers{Set: map[string]string{"x-version": "v1"}}},
					{Weight: 20, Service: "api-canary", RequestHeaders: &catalog.HeaderModifiers{Add: map[string]string{"x-canary": "yes"}},
						ResponseHeaders: &catalog.HeaderModifiers{Remove: []string{"x-internal"}}},
					{Weight: 0, Service: "api-admin"},
				}}
				s.ServiceSplitters["api-canary"] = &catalog.ServiceSplitter{Name: "api-canary", Splits: []catalog.Split{
					{Weight: 50, Service: "api", ServiceSubset: "v2",
						RequestHeaders:  &catalog.HeaderModifiers{Set: map[string]string{"x-version": "v2"}},
						ResponseHeaders: &catalog.HeaderModifiers{Add: map[string]string{"x-served-by": "v2"}}},
					{Weight: 50, Service: "api-next"},
				}}
			}),
		},
		{
			// Router matches on paths, headers, methods and query
			// parameters; unmatched requests go to api.
			name: "l7_router_matches",
			snap: l7Snap([]catalog.Upstream{up("api", 9191)}, func(s *catalog.Snapshot) {
				s.ServiceResolvers["api"] = versionSubsets()
				s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{
					{Match: &catalog.RouteHTTPMatch{PathExact: "/health"}, Destination: &catalog.RouteDestination{ServiceSubset: "v2"}},
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/Admin", CaseInsensitive: true, Methods: []string{"get", "POST"}, Headers: []catalog.RouteHeaderMatch{
						{Name: "x-debug", Present: true},
						{Name: "X-User", Exact: "alice"},
						{Name: "x-team", Prefix: "core-"},
						{Name: "x-region", Suffix: "-eu"},
						{Name: "x-client", Regex: "^curl/.*", Invert: true},
					}}, Destination: &catalog.RouteDestination{Service: "api-admin"}},
					{Match: &catalog.RouteHTTPMatch{PathRegex: "^/v[0-9]+/items$", CaseInsensitive: true, QueryParams: []catalog.RouteQueryParamMatch{
						{Name: "beta", Exact: "1"},
						{Name: "id", Regex: "^[0-9]+$"},
						{Name: "debug", Present: true},
					}}, Destination: &catalog.RouteDestination{ServiceSubset: "v1"}},
					{Match: &catalog.RouteHTTPMatch{Headers: []catalog.RouteHeaderMatch{{Name: "x-next", Exact: "1"}}},
						Destination: &catalog.RouteDestination{Service: "api-next"}},
				}}
			}),
		},
		{
			// Subsets by metadata and tags with and/or/not; v1 is the
			// default; v2 takes only passing instances (api-3 warns). The
			// tcp upstream db has a resolver too: tcp_proxy goes to its
			// default subset.
			name: "l7_subsets",
			snap: l7Snap([]catalog.Upstream{up("api", 9191), up("db", 5432)}, func(s *catalog.Snapshot) {
				protocols(s, catalog.ProtocolTCP, "db")
				s.ServiceResolvers["api"] = &catalog.ServiceResolver{Name: "api", DefaultSubset: "v1", Subsets: map[string]catalog.ResolverSubset{
					"v1":     {Filter: "Service.Meta.version == v1"},
					"v2":     {Filter: `Service.Meta.version == v2 and "canary" in Service.Tags`, OnlyPassing: true},
					"stable": {Filter: `not ("canary" in Service.Tags) or Service.Meta.owner == ops`},
				}}
				s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/v2/"}, Destination: &catalog.RouteDestination{ServiceSubset: "v2"}},
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/stable/"}, Destination: &catalog.RouteDestination{ServiceSubset: "stable"}},
				}}
				s.ServiceResolvers["db"] = &catalog.ServiceResolver{Name: "db", DefaultSubset: "primary", Subsets: map[string]catalog.ResolverSubset{
					"primary": {Filter: `Node.Node == "node-1"`},
				}}
			}),
		},
		{
			// api redirects to subset blue of api-v2; the tcp upstream
			// reports redirects to another datacenter, whose instances
			// Weft does not see.
			name: "l7_redirect",
			snap: l7Snap([]catalog.Upstream{up("api", 9191), up("reports", 9192)}, func(s *catalog.Snapshot) {
				protocols(s, catalog.ProtocolTCP, "reports")
				s.ServiceResolvers["api"] = &catalog.ServiceResolver{Name: "api", Redirect: &catalog.ResolverTarget{Service: "api-v2", ServiceSubset: "blue"}}
				s.ServiceResolvers["api-v2"] = &catalog.ServiceResolver{Name: "api-v2", Subsets: map[string]catalog.ResolverSubset{
					"blue":  {Filter: `"blue" in Service.Tags`},
					"green": {Filter: `"green" in Service.Tags`},
				}, LoadBalancer: &catalog.LoadBalancer{Policy: catalog.LBLeastRequest}}
				s.ServiceResolvers["reports"] = &catalog.ServiceResolver{Name: "reports", Redirect: &catalog.ResolverTarget{Datacenter: "dc2"}}
			}),
			mesh: testMesh,
		},
		{
			// Failover as EDS priorities: api (default subset v2) fails
			// over to subset v1, then to api-backup; any other subset of
			// api to api-backup, then api in dc2. The cluster accepts the
			// identities of every service it may reach.
			name: "l7_failover",
			snap: l7Snap([]catalog.Upstream{up("api", 9191)}, func(s *catalog.Snapshot) {
				r := versionSubsets()
				r.DefaultSubset = "v2"
				r.Failover = map[string]catalog.ResolverFailover{
					"v2": {Targets: []catalog.ResolverTarget{{ServiceSubset: "v1"}, {Service: "api-backup"}}},
					"*":  {Targets: []catalog.ResolverTarget{{Service: "api-backup"}, {Datacenter: "dc2"}}},
				}
				s.ServiceResolvers["api"] = r
				s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{
					{Match: &catalog.RouteHTTPMatch{PathPrefix: "/v1/"}, Destination: &catalog.RouteDestination{ServiceSubset: "v1"}},
				}}
			}),
			mesh: testMesh,
		},
	}
}
