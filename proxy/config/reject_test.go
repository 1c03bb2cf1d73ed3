package config

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

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
			in:      xdstest.Listener(l, "127.0.0.1:9191", &listenerv3.Filter{Name: "envoy.filters.network.ext_authz"}, xdstest.TCPProxy(api)),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: unsupported network filter "envoy.filters.network.ext_authz": only envoy.filters.network.rbac may come before tcp_proxy or http_connection_manager`,
		},
		{
			name:    "network rbac without typed_config",
			in:      xdstest.Listener(l, "127.0.0.1:9191", &listenerv3.Filter{Name: "envoy.filters.network.rbac"}, xdstest.TCPProxy(api)),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: filter "envoy.filters.network.rbac": missing typed_config`,
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
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: filter_chain_match is supported only with the envoy.filters.listener.original_dst listener filter`,
		},
		{
			name:    "transport socket without typed_config",
			in:      withTransportSocket(xdstest.TCPListener(l, "127.0.0.1:9191", api)),
			wantErr: `listener "api:127.0.0.1:9191": filter chain 0: transport socket "envoy.transport_sockets.tls" (envoy.transport_sockets.tls) is not supported`,
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
			name:    "cluster_header route",
			in:      routeWith(&routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_ClusterHeader{ClusterHeader: "x-cluster"}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): route: cluster_header is not supported`,
		},
		{
			name:    "redirect",
			in:      routeAction(&routev3.Route_Redirect{Redirect: &routev3.RedirectAction{}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): redirect action is not supported`,
		},
		{
			name:    "direct response with an informational status",
			in:      routeAction(&routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 100}}),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): direct_response: status 100 is not supported; want 200 to 599`,
		},
		{
			name:    "cookie match",
			in:      withCookieMatch(xdstest.RouteConfig("api", api)),
			wantErr: `route configuration "api": virtual host "api": route 0 (""): match: cookies is not supported`,
		},
		{
			name:    "duplicate domain",
			in:      withDuplicateVHost(xdstest.RouteConfig("api", api)),
			wantErr: `route configuration "api": virtual host "api2": domain "*" is also served by virtual host "api"`,
		},
		{
			name:    "lb policy",
			in:      withLB(xdstest.EDSCluster(api), clusterv3.Cluster_CLUSTER_PROVIDED),
			wantErr: `cluster "api.default.dc1": lb_policy CLUSTER_PROVIDED is not supported`,
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
		withLB(xdstest.EDSCluster("a"), clusterv3.Cluster_CLUSTER_PROVIDED),
		withLB(xdstest.EDSCluster("b"), clusterv3.Cluster_LOAD_BALANCING_POLICY_CONFIG),
		xdstest.TCPListener("x", "127.0.0.1:1", "a"),
		xdstest.TCPListener("y", "127.0.0.1:1", "a"),
	))
	for _, want := range []string{`cluster "a": lb_policy CLUSTER_PROVIDED`, `cluster "b": lb_policy LOAD_BALANCING_POLICY_CONFIG`, `listener "y": address 127.0.0.1:1 is also used by listener "x"`} {
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

func withCookieMatch(rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	rc.VirtualHosts[0].Routes[0].Match.Cookies = []*routev3.CookieMatcher{{Name: "x"}}
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
