package translate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/catalog"
)

func TestSubsetFilter(t *testing.T) {
	v2canary := catalog.Endpoint{ProxyID: "api-2-sidecar-proxy", Node: "node-2", Tags: []string{"canary"}, Meta: map[string]string{"version": "v2"}}
	plain := catalog.Endpoint{ProxyID: "api-1-sidecar-proxy", Node: "node-1"}
	tests := []struct {
		filter    string
		v2canary  bool
		plain     bool
		wantError string
	}{
		{filter: "Service.Meta.version == v2", v2canary: true},
		{filter: `Service.Meta.version == "v2"`, v2canary: true},
		{filter: "Service.Meta.version != v2", plain: true},
		{filter: `"canary" in Service.Tags`, v2canary: true},
		{filter: `"canary" not in Service.Tags`, plain: true},
		{filter: `Service.Meta.version == v2 and "canary" in Service.Tags`, v2canary: true},
		{filter: `Service.Meta.version == v1 or Node.Node == "node-1"`, plain: true},
		{filter: `not (Service.Meta.version == v2)`, plain: true},
		{filter: `Service.Tags is empty`, plain: true},
		{filter: `Service.ID matches "^api-2-"`, v2canary: true},
		{filter: `Service.Meta.team == x`}, // a missing key matches nothing
		{filter: "Service.Weights.Passing == 1", wantError: "Weights"},
		{filter: "Service.Meta.version ==", wantError: "no match found"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := compileFilter(tt.filter)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("compileFilter error = %v, want one mentioning %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("compileFilter: %v", err)
			}
			if got := f.match(v2canary); got != tt.v2canary {
				t.Errorf("match(v2 canary) = %v, want %v", got, tt.v2canary)
			}
			if got := f.match(plain); got != tt.plain {
				t.Errorf("match(untagged instance) = %v, want %v", got, tt.plain)
			}
		})
	}
}

func TestUpstreamSettingsPrecedence(t *testing.T) {
	limits := func(n int) *catalog.UpstreamLimits { return &catalog.UpstreamLimits{MaxConnections: ptr(n)} }
	web := &catalog.ServiceDefaults{Name: "web", UpstreamConfig: &catalog.UpstreamConfiguration{
		Defaults: &catalog.UpstreamConfig{ConnectTimeout: seconds(2), Limits: limits(100), PassiveHealthCheck: &catalog.PassiveHealthCheck{MaxFailures: 5}},
		Overrides: map[string]*catalog.UpstreamConfig{
			"api": {Protocol: "http2", Limits: limits(10)},
		},
	}}
	tests := []struct {
		name     string
		upstream catalog.Upstream
		want     upstreamSettings
	}{{
		name:     "defaults",
		upstream: catalog.Upstream{DestinationName: "db"},
		want: upstreamSettings{protocol: "tcp", connectTimeout: seconds(2), limits: limitSettings{set: true, maxConnections: 100, maxPendingRequests: unset, maxRequests: unset},
			outlier: outlierSettings{set: true, consecutive5xx: 5, enforcing: unset, maxEjectionPercent: unset}},
	}, {
		name:     "override replaces whole fields",
		upstream: catalog.Upstream{DestinationName: "api"},
		want: upstreamSettings{protocol: "http2", connectTimeout: seconds(2), limits: limitSettings{set: true, maxConnections: 10, maxPendingRequests: unset, maxRequests: unset},
			outlier: outlierSettings{set: true, consecutive5xx: 5, enforcing: unset, maxEjectionPercent: unset}},
	}, {
		name: "registration config wins",
		upstream: catalog.Upstream{DestinationName: "api", Protocol: "grpc",
			Config: &catalog.UpstreamConfig{ConnectTimeout: seconds(1), PassiveHealthCheck: &catalog.PassiveHealthCheck{MaxFailures: 2}}},
		want: upstreamSettings{protocol: "grpc", connectTimeout: seconds(1), limits: limitSettings{set: true, maxConnections: 10, maxPendingRequests: unset, maxRequests: unset},
			outlier: outlierSettings{set: true, consecutive5xx: 2, enforcing: unset, maxEjectionPercent: unset}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &translator{snap: &catalog.Snapshot{ServiceDefaults: map[string]*catalog.ServiceDefaults{"web": web}}}
			got, problems := tr.upstreamSettingsFor(webProxy(), tt.upstream)
			if len(problems) > 0 {
				t.Errorf("problems: %v", problems)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(upstreamSettings{}, limitSettings{}, outlierSettings{})); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChainSharedAcrossProxies checks a chain's routes and load
// assignments are built once for every proxy using it, and its clusters
// once per distinct upstream settings.
func TestChainSharedAcrossProxies(t *testing.T) {
	snap := l7Snap([]catalog.Upstream{up("api", 9191)}, func(s *catalog.Snapshot) {
		s.ServiceResolvers["api"] = versionSubsets()
		s.ServiceSplitters["api"] = &catalog.ServiceSplitter{Name: "api", Splits: []catalog.Split{{Weight: 50, ServiceSubset: "v1"}, {Weight: 50, ServiceSubset: "v2"}}}
		s.ServiceDefaults["batch"] = &catalog.ServiceDefaults{Name: "batch", UpstreamConfig: &catalog.UpstreamConfiguration{
			Defaults: &catalog.UpstreamConfig{Limits: &catalog.UpstreamLimits{MaxConnections: ptr(1)}},
		}}
	})
	web2 := webProxy(up("api", 9292))
	web2.ID = "web-2-sidecar-proxy"
	batch := webProxy(up("api", 9191))
	batch.ID, batch.DestinationName = "batch-1-sidecar-proxy", "batch"
	snap.Proxies[web2.ID], snap.Proxies[batch.ID] = web2, batch

	res := Translate(snap, testMesh)
	a, b, c := res.Proxies["web-1-sidecar-proxy"], res.Proxies[web2.ID], res.Proxies[batch.ID]
	if len(a.Routes) != 1 || a.Routes[0] != b.Routes[0] || a.Routes[0] != c.Routes[0] {
		t.Error("api's route configuration was built more than once")
	}
	for i := range a.Endpoints {
		if a.Endpoints[i] != b.Endpoints[i] || a.Endpoints[i] != c.Endpoints[i] {
			t.Errorf("load assignment %s was built more than once", a.Endpoints[i].ClusterName)
		}
	}
	for i, cl := range a.Clusters {
		if cl.Name == LocalAppCluster {
			continue // per proxy
		}
		if cl != b.Clusters[i] {
			t.Errorf("cluster %s differs between proxies of one service", cl.Name)
		}
		if cl == c.Clusters[i] {
			t.Errorf("cluster %s is shared with batch, whose upstream_config differs", cl.Name)
		}
	}
}

// TestChainFallbacks checks each kind of bad entry is reported, naming the
// entry and field, and the chain falls back to what still works.
func TestChainFallbacks(t *testing.T) {
	route := func(dest *catalog.RouteDestination, match *catalog.RouteHTTPMatch) func(s *catalog.Snapshot) {
		return func(s *catalog.Snapshot) {
			s.ServiceResolvers["api"] = versionSubsets()
			s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Routes: []catalog.ServiceRoute{{Match: match, Destination: dest}}}
		}
	}
	split := func(splits ...catalog.Split) func(s *catalog.Snapshot) {
		return func(s *catalog.Snapshot) {
			s.ServiceResolvers["api"] = versionSubsets()
			s.ServiceSplitters["api"] = &catalog.ServiceSplitter{Name: "api", Splits: splits}
		}
	}
	lb := func(l *catalog.LoadBalancer) func(s *catalog.Snapshot) {
		return func(s *catalog.Snapshot) {
			s.ServiceResolvers["api"] = &catalog.ServiceResolver{Name: "api", LoadBalancer: l}
		}
	}
	tests := []struct {
		name        string
		modify      func(s *catalog.Snapshot)
		wantProblem string
	}{
		{"unknown retry condition", route(&catalog.RouteDestination{RetryOn: []string{"5xx", "sometimes"}}, nil),
			`service-router "api": Routes[0].Destination.RetryOn[1]: "sometimes" is not one of`},
		{"status code", route(&catalog.RouteDestination{RetryOnStatusCodes: []uint32{42}}, nil),
			`Routes[0].Destination.RetryOnStatusCodes[0]: 42 is not an HTTP status`},
		{"pseudo-header", route(&catalog.RouteDestination{RequestHeaders: &catalog.HeaderModifiers{Set: map[string]string{":path": "/"}}}, nil),
			`Routes[0].Destination.RequestHeaders.Set: ":path" cannot be changed`},
		{"host header", route(&catalog.RouteDestination{ResponseHeaders: &catalog.HeaderModifiers{Remove: []string{"Host"}}}, nil),
			`Routes[0].Destination.ResponseHeaders.Remove[0]: "Host" cannot be changed`},
		{"two paths", route(nil, &catalog.RouteHTTPMatch{PathExact: "/a", PathPrefix: "/b"}),
			`Routes[0].Match.HTTP.PathExact, PathPrefix, PathRegex: at most one may be set`},
		{"header without a match", route(nil, &catalog.RouteHTTPMatch{Headers: []catalog.RouteHeaderMatch{{Name: "x"}}}),
			`Routes[0].Match.HTTP.Header[0]: exactly one of`},
		{"bad query regex", route(nil, &catalog.RouteHTTPMatch{QueryParams: []catalog.RouteQueryParamMatch{{Name: "q", Regex: "("}}}),
			`Routes[0].Match.HTTP.QueryParam[0]: invalid regular expression`},
		{"router unsupported", func(s *catalog.Snapshot) {
			s.ServiceRouters["api"] = &catalog.ServiceRouter{Name: "api", Unsupported: []string{`Routes[0].Destination.Partition = "p"`}}
		}, `service-router "api": not supported: Routes[0].Destination.Partition = "p"`},
		{"weight over 100", split(catalog.Split{Weight: 150, ServiceSubset: "v1"}),
			`service-splitter "api": Splits[0].Weight: 150 is not a percentage`},
		{"no weight", split(catalog.Split{Weight: 0, ServiceSubset: "v1"}),
			`service-splitter "api": Splits: no split has a weight`},
		{"split to a missing subset", split(catalog.Split{Weight: 100, ServiceSubset: "v3"}),
			`service-splitter "api": Splits[0]: service-resolver "api": Subsets: no subset named "v3"`},
		{"unknown policy", lb(&catalog.LoadBalancer{Policy: "fastest"}),
			`service-resolver "api": LoadBalancer: Policy "fastest" is not one of`},
		{"hash without ring", lb(&catalog.LoadBalancer{Policy: catalog.LBRoundRobin, HashPolicies: []catalog.HashPolicy{{SourceIP: true}}}),
			`LoadBalancer: HashPolicies need policy ring_hash or maglev`},
		{"choice count", lb(&catalog.LoadBalancer{Policy: catalog.LBLeastRequest, ChoiceCount: 1}),
			`LeastRequestConfig.ChoiceCount must be at least 2`},
		{"ring sizes", lb(&catalog.LoadBalancer{Policy: catalog.LBRingHash, MinRingSize: 10, MaxRingSize: 5}),
			`RingHashConfig.MinimumRingSize 10 exceeds MaximumRingSize 5`},
		{"cookie", lb(&catalog.LoadBalancer{Policy: catalog.LBMaglev, HashPolicies: []catalog.HashPolicy{{Field: catalog.HashCookie, FieldValue: "c",
			Cookie: &catalog.CookieConfig{Session: true, TTL: seconds(1)}}}}), `HashPolicies[0]: CookieConfig: a Session cookie has no TTL`},
		{"subset without resolver", route(&catalog.RouteDestination{Service: "api-next", ServiceSubset: "v1"}, nil),
			`service "api-next" has no service-resolver, so no subset "v1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Translate(l7Snap([]catalog.Upstream{up("api", 9191)}, tt.modify), Mesh{})
			var got []string
			for _, err := range res.Problems["web-1-sidecar-proxy"] {
				got = append(got, err.Error())
			}
			if len(got) == 0 || !strings.Contains(got[0], tt.wantProblem) {
				t.Fatalf("problems %q, want one containing %q", got, tt.wantProblem)
			}
			r := res.Proxies["web-1-sidecar-proxy"]
			checkConsistent(t, tt.name, r)
			if a := r.Routes[0].VirtualHosts[0].Routes[0].GetRoute(); a.GetCluster() != "api.default.dc1" {
				t.Errorf("fallback route goes to %v, want every instance of api", a.GetClusterSpecifier())
			}
		})
	}
}
