//lint:file-ignore SA1019 deprecated fields are tested on purpose: control planes still send them.

package config

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/retry"
	"github.com/weft-mesh/weft/proxy/route"
)

func cluster(mod func(*clusterv3.Cluster)) *clusterv3.Cluster {
	c := xdstest.EDSCluster(api)
	mod(c)
	return c
}

func compileOneCluster(t *testing.T, c *clusterv3.Cluster) (*Cluster, error) {
	t.Helper()
	if err := c.ValidateAll(); err != nil {
		t.Fatalf("test cluster is invalid: %v", err)
	}
	rt, err := Compile(state(c))
	if err != nil {
		return nil, err
	}
	return rt.Clusters[c.Name], nil
}

func protocolOptions(po *upstreamhttpv3.HttpProtocolOptions) map[string]*anypb.Any {
	return map[string]*anypb.Any{httpProtocolOptionsKey: xdstest.Any(po)}
}

func explicit(set func(*upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig)) *upstreamhttpv3.HttpProtocolOptions {
	e := &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{}
	set(e)
	return &upstreamhttpv3.HttpProtocolOptions{UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: e}}
}

func h1(o *corev3.Http1ProtocolOptions) *upstreamhttpv3.HttpProtocolOptions {
	return explicit(func(e *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig) {
		e.ProtocolConfig = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: o}
	})
}

func h2(o *corev3.Http2ProtocolOptions) *upstreamhttpv3.HttpProtocolOptions {
	return explicit(func(e *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig) {
		e.ProtocolConfig = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: o}
	})
}

func TestCompileClusterL7(t *testing.T) {
	ud := func(p float64) *corev3.RuntimeDouble { return &corev3.RuntimeDouble{DefaultValue: p, RuntimeKey: "k"} }
	tests := []struct {
		name  string
		mod   func(*clusterv3.Cluster)
		check func(*Cluster) any // compiled value to compare with want
		want  any
	}{
		{"least request default", func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST },
			func(c *Cluster) any { return c.LB }, LB{Policy: LeastRequest, PanicThreshold: 50}},
		{"least request choice count", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
				ChoiceCount: wrapperspb.UInt32(4), ActiveRequestBias: ud(1)}}
		}, func(c *Cluster) any { return c.LB }, LB{Policy: LeastRequest, ChoiceCount: 4, PanicThreshold: 50}},
		{"random", func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_RANDOM },
			func(c *Cluster) any { return c.LB }, LB{Policy: Random, PanicThreshold: 50}},
		{"ring hash sizes", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_RING_HASH
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(64), MaximumRingSize: wrapperspb.UInt64(4096)}}
		}, func(c *Cluster) any { return c.LB }, LB{Policy: RingHash, MinRingSize: 64, MaxRingSize: 4096, PanicThreshold: 50}},
		{"maglev table size", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_MAGLEV
			c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(251)}}
		}, func(c *Cluster) any { return c.LB }, LB{Policy: Maglev, TableSize: 251, PanicThreshold: 50}},
		{"panic threshold", func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: 30}}
		}, func(c *Cluster) any { return c.LB }, LB{Policy: RoundRobin, PanicThreshold: 30}},
		{"panic mode off", func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: 0}}
		}, func(c *Cluster) any { return c.LB }, LB{Policy: RoundRobin}},
		{"common_lb_config without a threshold", func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{}
		}, func(c *Cluster) any { return c.LB }, LB{Policy: RoundRobin, PanicThreshold: 50}},
		{"circuit breakers with a retry budget; HIGH ignored", func(c *clusterv3.Cluster) {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{
				{MaxConnections: wrapperspb.UInt32(10), MaxPendingRequests: wrapperspb.UInt32(20), MaxRequests: wrapperspb.UInt32(30), MaxRetries: wrapperspb.UInt32(4),
					RetryBudget: &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 25}}, TrackRemaining: true},
				{Priority: corev3.RoutingPriority_HIGH, MaxRequests: wrapperspb.UInt32(1)},
			}}
		}, func(c *Cluster) any { return c.Limits }, Limits{MaxConnections: 10, MaxPendingRequests: 20, MaxRequests: 30, MaxRetries: 4,
			RetryBudget: &RetryBudget{Percent: 25, MinConcurrency: 3}}},
		{"outlier detection defaults", func(c *clusterv3.Cluster) { c.OutlierDetection = &clusterv3.OutlierDetection{} },
			func(c *Cluster) any { return *c.Outlier }, outlier.Defaults()},
		{"outlier detection settings", func(c *clusterv3.Cluster) {
			c.OutlierDetection = &clusterv3.OutlierDetection{
				Consecutive_5Xx: wrapperspb.UInt32(3), Interval: durationpb.New(time.Second), BaseEjectionTime: durationpb.New(time.Minute),
				MaxEjectionPercent: wrapperspb.UInt32(50), EnforcingConsecutive_5Xx: wrapperspb.UInt32(80),
				ConsecutiveGatewayFailure: wrapperspb.UInt32(2), EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
				MaxEjectionTime: durationpb.New(time.Hour), MaxEjectionTimeJitter: durationpb.New(time.Second),
				AlwaysEjectOneHost: wrapperspb.Bool(true), EnforcingSuccessRate: wrapperspb.UInt32(0),
			}
		}, func(c *Cluster) any { return *c.Outlier }, outlier.Settings{Consecutive5xx: 3, ConsecutiveGatewayFailure: 2, Enforcing5xx: 80,
			EnforcingGatewayFailure: 100, Interval: time.Second, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Hour,
			MaxEjectionTimeJitter: time.Second, MaxEjectionPercent: 50, AlwaysEjectOneHost: true}},
		{"explicit HTTP/1.1", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(h1(&corev3.Http1ProtocolOptions{}))
		}, func(c *Cluster) any { return c.Protocol }, HTTP1},
		{"explicit HTTP/2 with settings", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(h2(&corev3.Http2ProtocolOptions{MaxConcurrentStreams: wrapperspb.UInt32(50)}))
		}, func(c *Cluster) any { return c.Protocol }, HTTP2},
		{"downstream protocol and idle timeout", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(&upstreamhttpv3.HttpProtocolOptions{
				CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(time.Minute)},
				UpstreamProtocolOptions:   &upstreamhttpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{UseDownstreamProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamHttpConfig{}},
			})
		}, func(c *Cluster) any { return []any{c.Protocol, c.IdleTimeout} }, []any{Downstream, time.Minute}},
		{"auto with TLS", func(c *clusterv3.Cluster) {
			c.TransportSocket = xdstest.UpstreamTLS(api, "spiffe://weft.local/ns/default/dc/dc1/svc/api")
			c.TypedExtensionProtocolOptions = protocolOptions(&upstreamhttpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &upstreamhttpv3.HttpProtocolOptions_AutoHttpConfig{}}})
		}, func(c *Cluster) any { return c.Protocol }, Auto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := compileOneCluster(t, cluster(tt.mod))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if diff := cmp.Diff(tt.want, tt.check(c)); diff != "" {
				t.Errorf("compiled (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRejectClusterL7(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*clusterv3.Cluster)
		wantErr string
	}{
		{"active_request_bias", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ActiveRequestBias: &corev3.RuntimeDouble{DefaultValue: 2, RuntimeKey: "k"}}}
		}, "least_request_lb_config: active_request_bias 2 is not supported"},
		{"slow start", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{SlowStartConfig: &clusterv3.Cluster_SlowStartConfig{}}}
		}, "least_request_lb_config: slow_start_config is not supported"},
		{"murmur hash", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_RING_HASH
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2}}
		}, "ring_hash_lb_config: hash_function MURMUR_HASH_2 is not supported"},
		{"ring sizes inverted", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_RING_HASH
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(100), MaximumRingSize: wrapperspb.UInt64(10)}}
		}, "minimum_ring_size 100 exceeds maximum_ring_size 10"},
		{"maglev table not prime", func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_MAGLEV
			c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(100)}}
		}, "maglev_lb_config: table_size 100 is not a prime number"},
		{"round robin slow start", func(c *clusterv3.Cluster) {
			c.LbConfig = &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{}}
		}, "round_robin_lb_config is not supported"},
		{"common_lb_config other than the panic threshold", func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{IgnoreNewHostsUntilFirstHc: true}
		}, "common_lb_config: ignore_new_hosts_until_first_hc is not supported"},
		{"per_host_thresholds", func(c *clusterv3.Cluster) {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{PerHostThresholds: []*clusterv3.CircuitBreakers_Thresholds{{}}}
		}, "circuit_breakers: per_host_thresholds is not supported"},
		{"max_connection_pools", func(c *clusterv3.Cluster) {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxConnectionPools: wrapperspb.UInt32(1)}}}
		}, "circuit_breakers: thresholds[0]: max_connection_pools is not supported"},
		{"two DEFAULT thresholds", func(c *clusterv3.Cluster) {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{}, {}}}
		}, "thresholds[1]: a second DEFAULT priority threshold"},
		{"success rate detection", func(c *clusterv3.Cluster) {
			c.OutlierDetection = &clusterv3.OutlierDetection{SuccessRateMinimumHosts: wrapperspb.UInt32(3)}
		}, "outlier_detection: success_rate_minimum_hosts is not supported"},
		{"failure percentage detection", func(c *clusterv3.Cluster) {
			c.OutlierDetection = &clusterv3.OutlierDetection{FailurePercentageThreshold: wrapperspb.UInt32(3)}
		}, "outlier_detection: failure_percentage_threshold is not supported"},
		{"split local origin errors", func(c *clusterv3.Cluster) {
			c.OutlierDetection = &clusterv3.OutlierDetection{SplitExternalLocalOriginErrors: true}
		}, "outlier_detection: split_external_local_origin_errors is not supported"},
		{"consecutive_5xx 0", func(c *clusterv3.Cluster) {
			c.OutlierDetection = &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(0)}
		}, "outlier_detection: consecutive_5xx must be at least 1"},
		{"HTTP/3", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(explicit(func(e *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig) {
				e.ProtocolConfig = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http3ProtocolOptions{Http3ProtocolOptions: &corev3.Http3ProtocolOptions{}}
			}))
		}, "explicit_http_config: http3_protocol_options is not supported"},
		{"upstream http filters", func(c *clusterv3.Cluster) {
			po := h1(&corev3.Http1ProtocolOptions{})
			po.HttpFilters = []*hcmv3.HttpFilter{{Name: "x"}}
			c.TypedExtensionProtocolOptions = protocolOptions(po)
		}, "HttpProtocolOptions: http_filters is not supported"},
		{"common max_connection_duration", func(c *clusterv3.Cluster) {
			po := h1(&corev3.Http1ProtocolOptions{})
			po.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxConnectionDuration: durationpb.New(time.Minute)}
			c.TypedExtensionProtocolOptions = protocolOptions(po)
		}, "common_http_protocol_options: max_connection_duration is not supported"},
		{"HTTP/1 absolute URLs", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(h1(&corev3.Http1ProtocolOptions{SendFullyQualifiedUrl: true}))
		}, "http_protocol_options: send_fully_qualified_url is not supported"},
		{"HTTP/2 custom settings", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(h2(&corev3.Http2ProtocolOptions{AllowConnect: true}))
		}, "http2_protocol_options: allow_connect is not supported"},
		{"auto without TLS", func(c *clusterv3.Cluster) {
			c.TypedExtensionProtocolOptions = protocolOptions(&upstreamhttpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &upstreamhttpv3.HttpProtocolOptions_AutoHttpConfig{}}})
		}, "auto_config needs a TLS transport socket"},
		{"deprecated upstream_http_protocol_options", func(c *clusterv3.Cluster) {
			c.UpstreamHttpProtocolOptions = &corev3.UpstreamHttpProtocolOptions{AutoSni: true}
		}, "upstream_http_protocol_options is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(tt.mod)
			_, err := Compile(state(c))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `cluster "`+api+`"`) {
				t.Errorf("Compile error = %v, want it to name the cluster and contain %q", err, tt.wantErr)
			}
		})
	}
}

func routeConfig(a *routev3.RouteAction, mod ...func(*routev3.Route)) *routev3.RouteConfiguration {
	r := xdstest.Route(xdstest.Prefix("/"), a)
	for _, m := range mod {
		m(r)
	}
	return xdstest.Routes("api", r)
}

func compileOneRoute(t *testing.T, rc *routev3.RouteConfiguration) (*route.Route, error) {
	t.Helper()
	if err := rc.ValidateAll(); err != nil {
		t.Fatalf("test route configuration is invalid: %v", err)
	}
	tbl, err := compileRouteConfig(rc)
	if err != nil {
		return nil, err
	}
	return &tbl.VirtualHosts()[0].Routes[0], nil
}

func TestCompileRouteL7(t *testing.T) {
	str := func(s string) *matcherv3.StringMatcher {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
	}
	t.Run("defaults", func(t *testing.T) {
		r, err := compileOneRoute(t, routeConfig(xdstest.ToCluster(api)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Action.Timeout != 15*time.Second || r.Action.Retry != nil || r.Action.BufferLimit != route.DefaultBufferLimit {
			t.Errorf("defaults: %+v", r.Action)
		}
	})
	t.Run("timeouts, retries, hashing, rewrites", func(t *testing.T) {
		a := xdstest.ToCluster(api)
		a.Timeout, a.IdleTimeout = durationpb.New(0), durationpb.New(time.Minute)
		a.PrefixRewrite = "/v2/"
		a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "api.internal"}
		a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{GrpcTimeoutHeaderMax: durationpb.New(time.Second), GrpcTimeoutHeaderOffset: durationpb.New(10 * time.Millisecond)}
		a.RetryPolicy = &routev3.RetryPolicy{
			RetryOn: "5xx,retriable-status-codes,unavailable", NumRetries: wrapperspb.UInt32(3), PerTryTimeout: durationpb.New(time.Second),
			RetriableStatusCodes: []uint32{418}, RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(10 * time.Millisecond)},
			RetryHostPredicate:            []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
			HostSelectionRetryMaxAttempts: 3,
		}
		a.HashPolicy = []*routev3.RouteAction_HashPolicy{
			{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"}}},
			{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: "s", Ttl: durationpb.New(time.Hour), Path: "/"}}, Terminal: true},
			{PolicySpecifier: &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: "u"}}},
			{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}},
		}
		r, err := compileOneRoute(t, routeConfig(a))
		if err != nil {
			t.Fatal(err)
		}
		got := r.Action
		got.Clusters = nil
		want := route.Action{
			PrefixRewrite: "/v2/", HasPrefixRewrite: true, HostRewrite: "api.internal",
			Timeout: 0, IdleTimeout: time.Minute, HasIdleTimeout: true,
			MaxGRPCTimeout: time.Second, HasMaxGRPCTimeout: true, GRPCTimeoutOffset: 10 * time.Millisecond,
			Retry: &retry.Policy{On: retry.On5xx | retry.OnRetriableStatusCodes | retry.OnGRPCUnavailable, NumRetries: 3, PerTryTimeout: time.Second,
				StatusCodes: []int{418}, BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, HostSelectionAttempts: 3},
			BufferLimit: route.DefaultBufferLimit,
			Hash: []route.HashPolicy{
				{Kind: route.HashHeader, Name: "X-User"},
				{Kind: route.HashCookie, Name: "s", CookieTTL: time.Hour, HasCookieTTL: true, CookiePath: "/", Terminal: true},
				{Kind: route.HashQuery, Name: "u"},
				{Kind: route.HashSourceIP},
			},
		}
		if diff := cmp.Diff(want, got, cmpRuntime); diff != "" {
			t.Errorf("action (-want +got):\n%s", diff)
		}
	})
	t.Run("weighted clusters with header changes", func(t *testing.T) {
		a := xdstest.Split("v1", 90, "v2", 10)
		a.GetWeightedClusters().Clusters[1].RequestHeadersToAdd = []*corev3.HeaderValueOption{{
			Header: &corev3.HeaderValue{Key: "x-canary", Value: "100%%"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}}
		a.GetWeightedClusters().Clusters[1].ResponseHeadersToRemove = []string{"server"}
		r, err := compileOneRoute(t, routeConfig(a))
		if err != nil {
			t.Fatal(err)
		}
		want := []route.WeightedCluster{{Name: "v1", Weight: 90}, {Name: "v2", Weight: 10,
			RequestHeaders:  route.Mutation{Add: []route.HeaderValue{{Key: "X-Canary", Value: "100%", Action: route.OverwriteIfExistsOrAdd}}},
			ResponseHeaders: route.Mutation{Remove: []string{"Server"}}}}
		if diff := cmp.Diff(want, r.Action.Clusters, cmpRuntime); diff != "" {
			t.Errorf("clusters (-want +got):\n%s", diff)
		}
	})
	t.Run("matches", func(t *testing.T) {
		m := &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"},
			Headers: []*routev3.HeaderMatcher{
				{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: str("GET")}},
				{Name: "X-Debug", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true},
				{Name: "x-n", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 1, End: 5}}},
			},
			QueryParameters: []*routev3.QueryParameterMatcher{
				{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: str("2")}},
				{Name: "debug", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}},
			},
			Grpc: &routev3.RouteMatch_GrpcRouteMatchOptions{},
		}
		r, err := compileOneRoute(t, xdstest.Routes("api", xdstest.Route(m, xdstest.ToCluster(api))))
		if err != nil {
			t.Fatal(err)
		}
		got := r.Match
		if got.Path.Kind != route.SeparatedPrefix || got.Path.Value != "/api" || !got.GRPC || len(got.Headers) != 3 || len(got.Query) != 2 ||
			got.Headers[1].Name != "x-debug" || got.Headers[1].Kind != route.HeaderPresent || !got.Headers[1].Invert ||
			got.Headers[2].Kind != route.HeaderRange || got.Headers[2].End != 5 || !got.Query[1].PresentOnly {
			t.Errorf("match = %+v", got)
		}
	})
	t.Run("virtual host retry policy and attempt counts", func(t *testing.T) {
		rc := routeConfig(xdstest.ToCluster(api))
		vh := rc.VirtualHosts[0]
		vh.RetryPolicy = &routev3.RetryPolicy{RetryOn: "connect-failure"}
		vh.IncludeRequestAttemptCount, vh.IncludeAttemptCountInResponse = true, true
		vh.PerRequestBufferLimitBytes = wrapperspb.UInt32(1024)
		r, err := compileOneRoute(t, rc)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action.Retry == nil || r.Action.Retry.On != retry.OnConnectFailure || r.Action.Retry.NumRetries != 1 ||
			!r.Action.AttemptCount || !r.Action.AttemptCountInResponse || r.Action.BufferLimit != 1024 {
			t.Errorf("inherited: %+v", r.Action)
		}
	})
}

func TestRejectRouteL7(t *testing.T) {
	act := func(mod func(*routev3.RouteAction)) *routev3.RouteConfiguration {
		a := xdstest.ToCluster(api)
		mod(a)
		return routeConfig(a)
	}
	hdr := func(k, v string) []*corev3.HeaderValueOption {
		return []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: k, Value: v}}}
	}
	tests := []struct {
		name    string
		in      proto.Message
		wantErr string
	}{
		{"weighted total mismatch", func() proto.Message {
			a := xdstest.Split("v1", 90, "v2", 10)
			a.GetWeightedClusters().TotalWeight = wrapperspb.UInt32(50)
			return routeConfig(a)
		}(), "total_weight 50 is not the sum of the weights, 100"},
		{"weighted runtime key", func() proto.Message {
			a := xdstest.Split("v1", 1)
			a.GetWeightedClusters().RuntimeKeyPrefix = "rt"
			return routeConfig(a)
		}(), "weighted_clusters: runtime_key_prefix is not supported"},
		{"weighted metadata_match", func() proto.Message {
			a := xdstest.Split("v1", 1)
			a.GetWeightedClusters().Clusters[0].MetadataMatch = &corev3.Metadata{}
			return routeConfig(a)
		}(), `clusters[0] ("v1"): metadata_match is not supported`},
		{"mirror", act(func(a *routev3.RouteAction) {
			a.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "m"}}
		}), "route: request_mirror_policies is not supported"},
		{"hedge via vhost", func() proto.Message {
			rc := routeConfig(xdstest.ToCluster(api))
			rc.VirtualHosts[0].HedgePolicy = &routev3.HedgePolicy{}
			return rc
		}(), "hedge_policy is not supported"},
		{"priority HIGH", act(func(a *routev3.RouteAction) { a.Priority = corev3.RoutingPriority_HIGH }), "priority HIGH is not supported"},
		{"not found 404", act(func(a *routev3.RouteAction) { a.ClusterNotFoundResponseCode = routev3.RouteAction_NOT_FOUND }), "cluster_not_found_response_code NOT_FOUND is not supported"},
		{"auto host rewrite", act(func(a *routev3.RouteAction) {
			a.HostRewriteSpecifier = &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)}
		}), "route: auto_host_rewrite is not supported"},
		{"path rewrite policy", act(func(a *routev3.RouteAction) { a.PathRewritePolicy = &corev3.TypedExtensionConfig{Name: "x"} }), "route: path_rewrite_policy is not supported"},
		{"unknown retry condition", act(func(a *routev3.RouteAction) { a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx,bogus"} }), `retry_policy: retry_on condition "bogus" is not supported`},
		{"retriable headers", act(func(a *routev3.RouteAction) {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", RetriableHeaders: []*routev3.HeaderMatcher{{Name: "x"}}}
		}), "retry_policy: retriable_headers is not supported"},
		{"per try idle timeout", act(func(a *routev3.RouteAction) {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", PerTryIdleTimeout: durationpb.New(time.Second)}
		}), "retry_policy: per_try_idle_timeout is not supported"},
		{"retry priority", act(func(a *routev3.RouteAction) {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", RetryPriority: &routev3.RetryPolicy_RetryPriority{Name: "x"}}
		}), "retry_policy: retry_priority is not supported"},
		{"other host predicate", act(func(a *routev3.RouteAction) {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.omit_canary_hosts"}}}
		}), `retry_host_predicate[0] "envoy.retry_host_predicates.omit_canary_hosts" is not supported`},
		{"rate limited back-off", act(func(a *routev3.RouteAction) {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", RateLimitedRetryBackOff: &routev3.RetryPolicy_RateLimitedRetryBackOff{}}
		}), "retry_policy: rate_limited_retry_back_off is not supported"},
		{"back-off max below base", act(func(a *routev3.RouteAction) {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond)}}
		}), "retry_back_off: max_interval 1ms is below base_interval 1s"},
		{"filter state hash", act(func(a *routev3.RouteAction) {
			a.HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_FilterState_{FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: "k"}}}}
		}), "hash_policy[0]: filter_state is not supported"},
		{"header hash regex rewrite", act(func(a *routev3.RouteAction) {
			a.HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{
				HeaderName: "x", RegexRewrite: &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "a"}}}}}}
		}), "hash_policy[0]: header: regex_rewrite is not supported"},
		{"cookie attributes", act(func(a *routev3.RouteAction) {
			a.HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{
				Name: "c", Attributes: []*routev3.RouteAction_HashPolicy_CookieAttribute{{Name: "SameSite", Value: "Lax"}}}}}}
		}), "hash_policy[0]: cookie: attributes is not supported"},
		{"bad regex rewrite", act(func(a *routev3.RouteAction) {
			a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "(("}, Substitution: "x"}
		}), `regex_rewrite pattern "(("`},
		{"prefix rewrite after a regex match", func() proto.Message {
			a := xdstest.ToCluster(api)
			a.PrefixRewrite = "/x"
			return xdstest.Routes("api", xdstest.Route(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/.*"}}}, a))
		}(), "prefix_rewrite needs a prefix, path or path_separated_prefix match"},
		{"header formatter", routeConfig(xdstest.ToCluster(api), func(r *routev3.Route) { r.RequestHeadersToAdd = hdr("x-ip", "%DOWNSTREAM_REMOTE_ADDRESS%") }),
			`request_headers_to_add[0]: header "x-ip": substitution formatters`},
		{"changing host", routeConfig(xdstest.ToCluster(api), func(r *routev3.Route) { r.RequestHeadersToAdd = hdr("host", "x") }),
			`request_headers_to_add[0]: header "host" cannot be changed`},
		{"removing a pseudo-header", routeConfig(xdstest.ToCluster(api), func(r *routev3.Route) { r.ResponseHeadersToRemove = []string{":status"} }),
			`response_headers_to_remove[0]: pseudo-header ":status" cannot be changed`},
		{"append and append_action", routeConfig(xdstest.ToCluster(api), func(r *routev3.Route) {
			r.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x", Value: "y"}, Append: wrapperspb.Bool(true), AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT}}
		}), `append and append_action are both set`},
		{"query present_match false", xdstest.Routes("api", xdstest.Route(&routev3.RouteMatch{
			PathSpecifier:   &routev3.RouteMatch_Prefix{Prefix: "/"},
			QueryParameters: []*routev3.QueryParameterMatcher{{Name: "q", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: false}}},
		}, xdstest.ToCluster(api))), `query_parameters[0] ("q"): present_match false is not supported`},
		{"runtime fraction", xdstest.Routes("api", xdstest.Route(&routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}, RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{}},
		}, xdstest.ToCluster(api))), "match: runtime_fraction is not supported"},
		{"internal only headers", func() proto.Message {
			rc := routeConfig(xdstest.ToCluster(api))
			rc.InternalOnlyHeaders = []string{"x"}
			return rc
		}(), `route configuration "api": internal_only_headers is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `route configuration "api"`) {
				t.Errorf("Compile error = %v, want it to name the route configuration and contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCompileHCML7(t *testing.T) {
	hcm := func(mod func(*hcmv3.HttpConnectionManager)) *HTTP {
		t.Helper()
		h := &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: xdstest.ADS(), RouteConfigName: "r"}}}
		mod(h)
		rt, err := Compile(state(xdstest.Listener("l", "127.0.0.1:1", xdstest.HCM(h))))
		if err != nil {
			t.Fatal(err)
		}
		return rt.Listeners[0].HTTP
	}
	got := hcm(func(h *hcmv3.HttpConnectionManager) {
		h.CodecType = hcmv3.HttpConnectionManager_HTTP2
		h.StreamIdleTimeout = durationpb.New(time.Minute)
		h.RequestHeadersTimeout = durationpb.New(time.Second)
		h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(time.Hour)}
		h.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{MaxConcurrentStreams: wrapperspb.UInt32(10), InitialStreamWindowSize: wrapperspb.UInt32(1 << 20),
			ConnectionKeepalive: &corev3.KeepaliveSettings{Interval: durationpb.New(time.Minute), Timeout: durationpb.New(time.Second)}}
	})
	want := &HTTP{RouteConfigName: "r", MaxRequestHeaderBytes: DefaultMaxRequestHeaderBytes, MaxRequestHeaders: DefaultMaxRequestHeaders,
		Codec: CodecHTTP2, StreamIdleTimeout: time.Minute, IdleTimeout: time.Hour, RequestHeadersTimeout: time.Second,
		HTTP2: HTTP2Settings{MaxConcurrentStreams: 10, InitialStreamWindowSize: 1 << 20, KeepaliveInterval: time.Minute, KeepaliveTimeout: time.Second}}
	if diff := cmp.Diff(want, got, cmpRuntime); diff != "" {
		t.Errorf("HCM (-want +got):\n%s", diff)
	}
	if d := hcm(func(h *hcmv3.HttpConnectionManager) { h.StreamIdleTimeout = durationpb.New(0) }); d.StreamIdleTimeout != 0 {
		t.Errorf("stream_idle_timeout 0: %s, want disabled", d.StreamIdleTimeout)
	}
}

func TestRejectHCML7(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*hcmv3.HttpConnectionManager)
		wantErr string
	}{
		{"HTTP/3 codec", func(h *hcmv3.HttpConnectionManager) { h.CodecType = hcmv3.HttpConnectionManager_HTTP3 }, "codec_type HTTP3 is not supported"},
		{"request_timeout", func(h *hcmv3.HttpConnectionManager) { h.RequestTimeout = durationpb.New(time.Second) }, "request_timeout is not supported"},
		{"max_stream_duration", func(h *hcmv3.HttpConnectionManager) {
			h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxStreamDuration: durationpb.New(time.Second)}
		}, "max_stream_duration is not supported"},
		{"underscores", func(h *hcmv3.HttpConnectionManager) {
			h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_REJECT_REQUEST}
		}, "headers_with_underscores_action is not supported"},
		{"local reply config", func(h *hcmv3.HttpConnectionManager) { h.LocalReplyConfig = &hcmv3.LocalReplyConfig{} }, "local_reply_config is not supported"},
		{"HTTP/2 custom settings", func(h *hcmv3.HttpConnectionManager) {
			h.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{CustomSettingsParameters: []*corev3.Http2ProtocolOptions_SettingsParameter{{Identifier: wrapperspb.UInt32(9), Value: wrapperspb.UInt32(1)}}}
		}, "http2_protocol_options: custom_settings_parameters is not supported"},
		{"HTTP/1 chunked length", func(h *hcmv3.HttpConnectionManager) {
			h.HttpProtocolOptions = &corev3.Http1ProtocolOptions{AllowChunkedLength: true}
		}, "http_protocol_options: allow_chunked_length is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: xdstest.ADS(), RouteConfigName: "r"}}}
			tt.mod(h)
			_, err := Compile(state(xdstest.Listener("l", "127.0.0.1:1", xdstest.HCM(h))))
			if err == nil || !strings.Contains(err.Error(), `listener "l": filter chain 0: http_connection_manager: `+tt.wantErr) {
				t.Errorf("Compile error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
