package config

import (
	"regexp"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/route"
	"github.com/weft-mesh/weft/proxy/xds"
)

// state sorts resources into an xds.State.
func state(resources ...proto.Message) xds.State {
	s := xds.State{}
	put := func(r *xds.Resources, name string, m proto.Message) {
		if r.Items == nil {
			r.Items = make(map[string]proto.Message)
		}
		r.Items[name], r.Received = m, true
	}
	for _, m := range resources {
		switch m := m.(type) {
		case *listenerv3.Listener:
			put(&s.Listeners, m.GetName(), m)
		case *clusterv3.Cluster:
			put(&s.Clusters, m.GetName(), m)
		case *routev3.RouteConfiguration:
			put(&s.Routes, m.GetName(), m)
		case *endpointv3.ClusterLoadAssignment:
			put(&s.Endpoints, m.GetClusterName(), m)
		case *tlsv3.Secret:
			put(&s.Secrets, m.GetName(), m)
		}
	}
	return s
}

// cmpRuntime compares route tables by name and virtual hosts.
var cmpRuntime = cmp.Options{
	cmp.Transformer("table", func(t *route.Table) any {
		if t == nil {
			return nil
		}
		return struct {
			Name   string
			VHosts []route.VirtualHost
		}{t.Name, t.VirtualHosts()}
	}),
	cmpopts.IgnoreUnexported(Runtime{}, route.PathMatch{}, route.Route{}, route.Action{}, match.String{}),
	cmp.Comparer(func(a, b *regexp.Regexp) bool {
		return a == nil && b == nil || a != nil && b != nil && a.String() == b.String()
	}),
	cmpopts.EquateEmpty(),
}

const api = "api.default.dc1"

func healthy(addr string, weight uint32) Endpoint {
	return Endpoint{Address: addr, Healthy: true, Weight: weight}
}

func TestCompileGood(t *testing.T) {
	apiRoutes := route.VirtualHost{Name: "api", Domains: []string{"*"}, Routes: []route.Route{
		{Match: prefixMatch("/"), Action: defaultAction(api)},
	}}
	tests := []struct {
		name string
		in   xds.State
		want *Runtime
	}{
		{
			name: "tcp upstream with EDS cluster",
			in: state(
				xdstest.TCPListener("api:127.0.0.1:9191", "127.0.0.1:9191", api),
				xdstest.EDSCluster(api),
				xdstest.LoadAssignment(api,
					xdstest.WithInstanceID(xdstest.WeightedEndpoint("10.0.0.1:20000", corev3.HealthStatus_HEALTHY, 3), "api-1-sidecar-proxy"),
					xdstest.WeightedEndpoint("10.0.0.2:20000", corev3.HealthStatus_UNHEALTHY, 1),
					xdstest.WeightedEndpoint("10.0.0.3:20000", corev3.HealthStatus_UNKNOWN, 0)),
			),
			want: &Runtime{
				Listeners: []*Listener{{Name: "api:127.0.0.1:9191", Address: "127.0.0.1:9191", Mode: ModeTCP, Cluster: api}},
				Clusters: map[string]*Cluster{api: {Name: api, ConnectTimeout: 5 * time.Second, EDSName: api, Limits: DefaultLimits(), LB: defaultLB, Endpoints: []Endpoint{
					{Address: "10.0.0.1:20000", Healthy: true, Weight: 3, InstanceID: "api-1-sidecar-proxy"},
					{Address: "10.0.0.2:20000", Weight: 1},
					healthy("10.0.0.3:20000", 1),
				}}},
				Subscriptions: xds.Subscriptions{Endpoints: []string{api}},
			},
		},
		{
			name: "http upstream with RDS, load assignment not arrived yet",
			in: state(
				xdstest.HTTPListenerRDS("api:127.0.0.1:9192", "127.0.0.1:9192", "api"),
				xdstest.RouteConfig("api", api),
				xdstest.EDSCluster(api),
			),
			want: &Runtime{
				Listeners: []*Listener{{Name: "api:127.0.0.1:9192", Address: "127.0.0.1:9192", Mode: ModeHTTP,
					HTTP: limits(&HTTP{RouteConfigName: "api", Routes: mustTable(t, "api", apiRoutes)})}},
				Clusters:      map[string]*Cluster{api: {Name: api, ConnectTimeout: 5 * time.Second, EDSName: api, Limits: DefaultLimits(), LB: defaultLB}},
				Subscriptions: xds.Subscriptions{Routes: []string{"api"}, Endpoints: []string{api}},
			},
		},
		{
			name: "RDS route config not arrived yet, cluster missing",
			in:   state(xdstest.HTTPListenerRDS("l", "127.0.0.1:1", "api")),
			want: &Runtime{
				Listeners:     []*Listener{{Name: "l", Address: "127.0.0.1:1", Mode: ModeHTTP, HTTP: limits(&HTTP{RouteConfigName: "api"})}},
				Subscriptions: xds.Subscriptions{Routes: []string{"api"}},
			},
		},
		{
			name: "public listener with inline routes to a static local_app over HTTP/2",
			in: state(
				xdstest.HTTPListenerInline("public_listener", "0.0.0.0:21000", xdstest.RouteConfig("local_app", "local_app")),
				withHTTP2(xdstest.StaticCluster("local_app", xdstest.Endpoint("127.0.0.1:8080"))),
			),
			want: &Runtime{
				Listeners: []*Listener{{Name: "public_listener", Address: "0.0.0.0:21000", Mode: ModeHTTP,
					HTTP: limits(&HTTP{Routes: mustTable(t, "local_app", route.VirtualHost{Name: "local_app", Domains: []string{"*"}, Routes: []route.Route{
						{Match: prefixMatch("/"), Action: defaultAction("local_app")},
					}})})}},
				Clusters: map[string]*Cluster{"local_app": {Name: "local_app", ConnectTimeout: 5 * time.Second, Protocol: HTTP2, Limits: DefaultLimits(), LB: defaultLB,
					Endpoints: []Endpoint{healthy("127.0.0.1:8080", 1)}}},
			},
		},
		{
			name: "optional unknown http filter is skipped; EDS service_name",
			in: state(
				xdstest.Listener("l", "127.0.0.1:2", xdstest.HCM(&hcmv3.HttpConnectionManager{
					RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: xdstest.ADS(), RouteConfigName: "r"}},
					HttpFilters: []*hcmv3.HttpFilter{
						{Name: "envoy.filters.http.foo", IsOptional: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: xdstest.Any(&wrapperspb.StringValue{})}},
						xdstest.Router(),
					},
				})),
				withServiceName(xdstest.EDSCluster("c"), "svc"),
			),
			want: &Runtime{
				Listeners:     []*Listener{{Name: "l", Address: "127.0.0.1:2", Mode: ModeHTTP, HTTP: limits(&HTTP{RouteConfigName: "r"})}},
				Clusters:      map[string]*Cluster{"c": {Name: "c", ConnectTimeout: 5 * time.Second, EDSName: "svc", Limits: DefaultLimits(), LB: defaultLB}},
				Subscriptions: xds.Subscriptions{Routes: []string{"r"}, Endpoints: []string{"svc"}},
			},
		},
		{
			name: "explicit header limits",
			in: state(xdstest.Listener("l", "127.0.0.1:3", xdstest.HCM(&hcmv3.HttpConnectionManager{
				RouteSpecifier:            &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: xdstest.ADS(), RouteConfigName: "r"}},
				MaxRequestHeadersKb:       wrapperspb.UInt32(8),
				CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(20)},
			}))),
			want: &Runtime{
				Listeners: []*Listener{{Name: "l", Address: "127.0.0.1:3", Mode: ModeHTTP,
					HTTP: &HTTP{RouteConfigName: "r", MaxRequestHeaderBytes: 8 << 10, MaxRequestHeaders: 20,
						StreamIdleTimeout: DefaultStreamIdleTimeout, HTTP2: HTTP2Settings{MaxConcurrentStreams: DefaultMaxConcurrentStreams}}}},
				Subscriptions: xds.Subscriptions{Routes: []string{"r"}},
			},
		},
		{
			name: "empty state",
			in:   xds.State{},
			want: &Runtime{Clusters: map[string]*Cluster{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compile(tt.in)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpRuntime); diff != "" {
				t.Errorf("Compile (-want +got):\n%s", diff)
			}
		})
	}
}

// limits sets the default HTTP limits and timeouts.
func limits(h *HTTP) *HTTP {
	h.MaxRequestHeaderBytes, h.MaxRequestHeaders = DefaultMaxRequestHeaderBytes, DefaultMaxRequestHeaders
	h.StreamIdleTimeout, h.HTTP2.MaxConcurrentStreams = DefaultStreamIdleTimeout, DefaultMaxConcurrentStreams
	return h
}

func prefixMatch(p string) route.Match {
	return route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: p}}
}

// defaultAction is a route to cluster with every default.
func defaultAction(cluster string) route.Action {
	return route.Action{Clusters: []route.WeightedCluster{{Name: cluster, Weight: 1}}, Timeout: route.DefaultTimeout, BufferLimit: route.DefaultBufferLimit}
}

func mustTable(t *testing.T, name string, vhosts ...route.VirtualHost) *route.Table {
	t.Helper()
	tbl, err := route.NewTable(name, vhosts)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func withHTTP2(c *clusterv3.Cluster) *clusterv3.Cluster {
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
		httpProtocolOptionsKey: xdstest.Any(&upstreamhttpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
					},
				},
			},
		}),
	}
	return c
}

func withServiceName(c *clusterv3.Cluster, name string) *clusterv3.Cluster {
	c.EdsClusterConfig.ServiceName = name
	return c
}

// defaultLB is what a cluster without lb_policy or common_lb_config
// compiles to: round robin with Envoy's default panic threshold.
var defaultLB = LB{Policy: RoundRobin, PanicThreshold: DefaultPanicThreshold}
