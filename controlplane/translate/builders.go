package translate

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Defaults applied to every generated resource.
const (
	defaultConnectTimeout = 5 * time.Second
	maxRequestHeadersKB   = 60
	maxRequestHeaders     = 100
)

// adsSource points a dynamic resource at the ADS stream it came on.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func socketAddress(addr string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       addr,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// mustAny packs a message whose type is compiled in; it cannot fail.
func mustAny(m proto.Message) *anypb.Any {
	// Deterministic: map fields (RBAC policies) must serialize alike on
	// every translation, or a resource's content hash, hence its version,
	// would differ between replicas and between equal catalogs.
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(err)
	}
	return a
}

func typedFilter(name string, config proto.Message) *listenerv3.Filter {
	return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(config)}}
}

func typedHTTPFilter(name string, config proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(config)}}
}

func tcpProxyFilterFor(statPrefix, cluster string) *listenerv3.Filter {
	return typedFilter(tcpProxyFilter, &tcpproxyv3.TcpProxy{
		StatPrefix:       statPrefix,
		ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
	})
}

// httpFilter builds an http_connection_manager whose routes come either
// inline (routes != nil) or over RDS (rdsName). The router runs after
// the given HTTP filters.
// hcmConfig describes an http_connection_manager.
type hcmConfig struct {
	statPrefix string
	routes     *routev3.RouteConfiguration // inline routes, or
	rdsName    string                      // routes over RDS
	filters    []*hcmv3.HttpFilter         // run before the router
	tracing    *hcmv3.HttpConnectionManager_Tracing
}

func httpFilter(c hcmConfig) *listenerv3.Filter {
	m := &hcmv3.HttpConnectionManager{
		StatPrefix:                c.statPrefix,
		CodecType:                 hcmv3.HttpConnectionManager_AUTO,
		HttpFilters:               append(c.filters, typedHTTPFilter(routerFilter, &routerv3.Router{})),
		MaxRequestHeadersKb:       wrapperspb.UInt32(maxRequestHeadersKB),
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(maxRequestHeaders)},
		Tracing:                   c.tracing,
	}
	if c.routes != nil {
		m.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: c.routes}
	} else {
		m.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: c.rdsName,
		}}
	}
	return typedFilter(hcmFilter, m)
}

// catchAllRoute sends every request of a single virtual host to one cluster.
func catchAllRoute(name, vhost, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    vhost,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
				}},
			}},
		}},
	}
}

// listenerWith builds a listener of one filter chain; ts may be nil.
func listenerWith(name string, addr *corev3.Address, dir corev3.TrafficDirection, ts *corev3.TransportSocket, fs ...*listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:             name,
		Address:          addr,
		TrafficDirection: dir,
		FilterChains:     []*listenerv3.FilterChain{{Filters: fs, TransportSocket: ts}},
	}
}

func staticCluster(name, addr string, port int) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(defaultConnectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{
				lbEndpoint(addr, port, corev3.HealthStatus_HEALTHY, 1),
			}}},
		},
	}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(defaultConnectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
}

func lbEndpoint(addr string, port int, health corev3.HealthStatus, weight int) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(addr, port),
		}},
		HealthStatus:        health,
		LoadBalancingWeight: wrapperspb.UInt32(uint32(weight)),
	}
}

func wrapBool(b bool) *wrapperspb.BoolValue { return wrapperspb.Bool(b) }
