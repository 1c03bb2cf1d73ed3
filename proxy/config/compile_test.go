package config

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
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
	cmpopts.IgnoreUnexported(route.Match{}),
	cmpopts.EquateEmpty(),
}

const api = "api.default.dc1"

func healthy(addr string, weight uint32) Endpoint {
	return Endpoint{Address: addr, Healthy: true, Weight: weight}
}

func TestCompileGood(t *testing.T) {
	apiRoutes := route.VirtualHost{Name: "api", Domains: []string{"*"}, Routes: []route.Route{
		{Match: route.Match{Kind: route.Prefix, Value: "/"}, Cluster: api},
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
					xdstest.WeightedEndpoint("10.0.0.1:20000", corev3.HealthStatus_HEALTHY, 3),
					xdstest.WeightedEndpoint("10.0.0.2:20000", corev3.HealthStatus_UNHEALTHY, 1),
					xdstest.WeightedEndpoint("10.0.0.3:20000", corev3.HealthStatus_UNKNOWN, 0)),
			),
			want: &Runtime{
				Listeners: []*Listener{{Name: "api:127.0.0.1:9191", Address: "127.0.0.1:9191", Mode: ModeTCP, Cluster: api}},
				Clusters: map[string]*Cluster{api: {Name: api, ConnectTimeout: 5 * time.Second, EDSName: api, Endpoints: []Endpoint{
					healthy("10.0.0.1:20000", 3),
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
					HTTP: &HTTP{RouteConfigName: "api", Routes: mustTable(t, "api", apiRoutes)}}},
				Clusters:      map[string]*Cluster{api: {Name: api, ConnectTimeout: 5 * time.Second, EDSName: api}},
				Subscriptions: xds.Subscriptions{Routes: []string{"api"}, Endpoints: []string{api}},
			},
		},
		{
			name: "RDS route config not arrived yet, cluster missing",
			in:   state(xdstest.HTTPListenerRDS("l", "127.0.0.1:1", "api")),
			want: &Runtime{
				Listeners:     []*Listener{{Name: "l", Address: "127.0.0.1:1", Mode: ModeHTTP, HTTP: &HTTP{RouteConfigName: "api"}}},
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
					HTTP: &HTTP{Routes: mustTable(t, "local_app", route.VirtualHost{Name: "local_app", Domains: []string{"*"}, Routes: []route.Route{
						{Match: route.Match{Kind: route.Prefix, Value: "/"}, Cluster: "local_app"},
					}})}}},
				Clusters: map[string]*Cluster{"local_app": {Name: "local_app", ConnectTimeout: 5 * time.Second, HTTP2: true,
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
				Listeners:     []*Listener{{Name: "l", Address: "127.0.0.1:2", Mode: ModeHTTP, HTTP: &HTTP{RouteConfigName: "r"}}},
				Clusters:      map[string]*Cluster{"c": {Name: "c", ConnectTimeout: 5 * time.Second, EDSName: "svc"}},
				Subscriptions: xds.Subscriptions{Routes: []string{"r"}, Endpoints: []string{"svc"}},
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

func TestCompileRejectsNamingTheResource(t *testing.T) {
	const l = "api:127.0.0.1:9191"
	tests := []struct {
		name    string
		in      proto.Message
		wantErr string
	}{
		{
			name:    "unknown network filter",
			in:      xdstest.Listener(l, "127.0.0.1:9191", &listenerv3.Filter{Name: "envoy.filters.network.foo", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: xdstest.Any(&wrapperspb.StringValue{})}}),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: unsupported network filter "envoy.filters.network.foo"`,
		},
		{
			name:    "network filter before tcp_proxy",
			in:      xdstest.Listener(l, "127.0.0.1:9191", &listenerv3.Filter{Name: "envoy.filters.network.rbac"}, xdstest.TCPProxy(api)),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: unsupported network filter "envoy.filters.network.rbac"`,
		},
		{
			name:    "two filter chains",
			in:      withChains(xdstest.TCPListener(l, "127.0.0.1:9191", api), 2),
			wantErr: `listener "api:127.0.0.1:9191": has 2 filter chains; exactly one is supported`,
		},
		{
			name:    "pipe address",
			in:      withPipe(xdstest.TCPListener(l, "127.0.0.1:9191", api)),
			wantErr: `listener "api:127.0.0.1:9191": address: pipe address "/tmp/sock" is not supported`,
		},
		{
			name:    "hostname listener address",
			in:      xdstest.TCPListener(l, "localhost:9191", api),
			wantErr: `listener "api:127.0.0.1:9191": address: address "localhost" is not an IP address`,
		},
		{
			name:    "filter chain match",
			in:      withChainMatch(xdstest.TCPListener(l, "127.0.0.1:9191", api)),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: filter_chain_match is not supported`,
		},
		{
			name:    "transport socket (mTLS comes later)",
			in:      withTransportSocket(xdstest.TCPListener(l, "127.0.0.1:9191", api)),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: transport socket "envoy.transport_sockets.tls" is not supported yet`,
		},
		{
			name:    "unknown http filter",
			in:      httpListener(l, &hcmv3.HttpFilter{Name: "envoy.filters.http.foo", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: xdstest.Any(&wrapperspb.StringValue{})}}, xdstest.Router()),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: http_connection_manager: unsupported http filter "envoy.filters.http.foo"`,
		},
		{
			name:    "no router",
			in:      httpListener(l, &hcmv3.HttpFilter{Name: "envoy.filters.http.foo", IsOptional: true}),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: http_connection_manager: http_filters must end with envoy.filters.http.router`,
		},
		{
			name:    "weighted route",
			in:      routeWith(&routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: "a", Weight: wrapperspb.UInt32(1)}}}}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): weighted_clusters are not supported`,
		},
		{
			name:    "cluster_header route",
			in:      routeWith(&routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_ClusterHeader{ClusterHeader: "x-cluster"}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): cluster_header is not supported`,
		},
		{
			name:    "redirect",
			in:      routeAction(&routev3.Route_Redirect{Redirect: &routev3.RedirectAction{}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): redirect action is not supported`,
		},
		{
			name:    "direct response",
			in:      routeAction(&routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): direct_response action is not supported`,
		},
		{
			name:    "header match",
			in:      withHeaderMatch(xdstest.RouteConfig("api", api)),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): match: matching on headers is not supported`,
		},
		{
			name:    "duplicate domain",
			in:      withDuplicateVHost(xdstest.RouteConfig("api", api)),
			wantErr: `route configuration "api": virtual host "api2": domain "*" is also served by virtual host "api"`,
		},
		{
			name:    "lb policy",
			in:      withLB(xdstest.EDSCluster(api), clusterv3.Cluster_LEAST_REQUEST),
			wantErr: `cluster "api.default.dc1": lb_policy LEAST_REQUEST is not supported`,
		},
		{
			name:    "discovery type",
			in:      withType(xdstest.EDSCluster(api), clusterv3.Cluster_LOGICAL_DNS),
			wantErr: `cluster "api.default.dc1": discovery type LOGICAL_DNS is not supported`,
		},
		{
			name:    "static cluster without load assignment",
			in:      withType(xdstest.EDSCluster(api), clusterv3.Cluster_STATIC),
			wantErr: `cluster "api.default.dc1": STATIC cluster without load_assignment`,
		},
		{
			name:    "static cluster with a hostname",
			in:      xdstest.StaticCluster("local_app", xdstest.Endpoint("localhost:8080")),
			wantErr: `cluster "local_app": load_assignment: locality 0: endpoint 0: address "localhost" is not an IP address`,
		},
		{
			name:    "unknown protocol options",
			in:      withProtocolOptions(xdstest.EDSCluster(api), "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"),
			wantErr: `cluster "api.default.dc1": typed_extension_protocol_options "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions" is not supported`,
		},
		{
			name:    "pipe endpoint",
			in:      withPipeEndpoint(xdstest.LoadAssignment(api, xdstest.Endpoint("10.0.0.1:1"))),
			wantErr: `cluster load assignment "api.default.dc1": locality 0: endpoint 0: pipe address "/tmp/sock" is not supported`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Compile(state(tt.in))
			if err == nil {
				t.Fatalf("Compile succeeded with %+v, want error %q", rt, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Compile error:\n  %v\nwant it to contain:\n  %s", err, tt.wantErr)
			}
		})
	}
}

func TestCompileReportsEveryBadResource(t *testing.T) {
	_, err := Compile(state(
		withLB(xdstest.EDSCluster("a"), clusterv3.Cluster_RING_HASH),
		withLB(xdstest.EDSCluster("b"), clusterv3.Cluster_MAGLEV),
		xdstest.TCPListener("x", "127.0.0.1:1", "a"),
		xdstest.TCPListener("y", "127.0.0.1:1", "a"),
	))
	for _, want := range []string{`cluster "a": lb_policy RING_HASH`, `cluster "b": lb_policy MAGLEV`, `listener "y": address 127.0.0.1:1 is also used by listener "x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile error = %v, want it to contain %q", err, want)
		}
	}
}

func withChains(l *listenerv3.Listener, n int) *listenerv3.Listener {
	for len(l.FilterChains) < n {
		l.FilterChains = append(l.FilterChains, l.FilterChains[0])
	}
	return l
}

func withPipe(l *listenerv3.Listener) *listenerv3.Listener {
	l.Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/sock"}}}
	return l
}

func withChainMatch(l *listenerv3.Listener) *listenerv3.Listener {
	l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"a"}}
	return l
}

func withTransportSocket(l *listenerv3.Listener) *listenerv3.Listener {
	l.FilterChains[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls"}
	return l
}

func httpListener(name string, filters ...*hcmv3.HttpFilter) *listenerv3.Listener {
	return xdstest.Listener(name, "127.0.0.1:9191", xdstest.HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: xdstest.ADS(), RouteConfigName: "api"}},
		HttpFilters:    filters,
	}))
}

func routeAction(action any) *routev3.RouteConfiguration {
	rc := xdstest.RouteConfig("api", api)
	switch a := action.(type) {
	case *routev3.Route_Redirect:
		rc.VirtualHosts[0].Routes[0].Action = a
	case *routev3.Route_DirectResponse:
		rc.VirtualHosts[0].Routes[0].Action = a
	}
	return rc
}

func routeWith(a *routev3.RouteAction) *routev3.RouteConfiguration {
	rc := xdstest.RouteConfig("api", api)
	rc.VirtualHosts[0].Routes[0].Action = &routev3.Route_Route{Route: a}
	return rc
}

func withHeaderMatch(rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	rc.VirtualHosts[0].Routes[0].Match.Headers = []*routev3.HeaderMatcher{{Name: "x"}}
	return rc
}

func withDuplicateVHost(rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	vh := proto.Clone(rc.VirtualHosts[0]).(*routev3.VirtualHost)
	vh.Name = "api2"
	rc.VirtualHosts = append(rc.VirtualHosts, vh)
	return rc
}

func withLB(c *clusterv3.Cluster, p clusterv3.Cluster_LbPolicy) *clusterv3.Cluster {
	c.LbPolicy = p
	return c
}

func withType(c *clusterv3.Cluster, ty clusterv3.Cluster_DiscoveryType) *clusterv3.Cluster {
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: ty}
	return c
}

func withProtocolOptions(c *clusterv3.Cluster, key string) *clusterv3.Cluster {
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{key: xdstest.Any(&wrapperspb.StringValue{})}
	return c
}

func withPipeEndpoint(cla *endpointv3.ClusterLoadAssignment) *endpointv3.ClusterLoadAssignment {
	cla.Endpoints[0].LbEndpoints[0].GetEndpoint().Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/sock"}}}
	return cla
}
