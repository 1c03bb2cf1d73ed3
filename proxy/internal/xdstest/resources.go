// Package xdstest builds the Envoy v3 resources of docs/xds.md for
// weft-proxy's tests.
package xdstest

import (
	"net"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Any packs m, panicking on error (test data only).
func Any(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

// SocketAddress returns a TCP address for "host:port".
func SocketAddress(hostport string) *corev3.Address {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		panic(err)
	}
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		panic(err)
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
	}}}
}

// ADS is a config source meaning "over the ADS stream".
func ADS() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// Listener returns a listener on addr with one filter chain of filters.
func Listener(name, addr string, filters ...*listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         name,
		Address:      SocketAddress(addr),
		FilterChains: []*listenerv3.FilterChain{{Filters: filters}},
	}
}

// TCPProxy is a tcp_proxy network filter to cluster.
func TCPProxy(cluster string) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name: "envoy.filters.network.tcp_proxy",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: Any(&tcpproxyv3.TcpProxy{
			StatPrefix:       cluster,
			ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
		})},
	}
}

// TCPListener is an outbound tcp_proxy listener.
func TCPListener(name, addr, cluster string) *listenerv3.Listener {
	return Listener(name, addr, TCPProxy(cluster))
}

// Router is the router HTTP filter.
func Router() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.router",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Any(&routerv3.Router{})},
	}
}

// HCM wraps an http_connection_manager as a network filter.
func HCM(hcm *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	if hcm.StatPrefix == "" {
		hcm.StatPrefix = "http"
	}
	if hcm.HttpFilters == nil {
		hcm.HttpFilters = []*hcmv3.HttpFilter{Router()}
	}
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: Any(hcm)},
	}
}

// HTTPListenerRDS is an http listener whose routes come from RDS.
func HTTPListenerRDS(name, addr, routeName string) *listenerv3.Listener {
	return Listener(name, addr, HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ADS(), RouteConfigName: routeName}},
	}))
}

// HTTPListenerInline is an http listener with an inline route config.
func HTTPListenerInline(name, addr string, rc *routev3.RouteConfiguration) *listenerv3.Listener {
	return Listener(name, addr, HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
	}))
}

// PrefixRoute routes prefix to cluster.
func PrefixRoute(prefix, cluster string) *routev3.Route {
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
	}
}

// RouteConfig is the route config docs/xds.md emits per service: one
// virtual host for every domain, prefix "/" to cluster.
func RouteConfig(name, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name: name, Domains: []string{"*"},
			Routes: []*routev3.Route{PrefixRoute("/", cluster)},
		}},
	}
}

// EDSCluster is an EDS-over-ADS round-robin cluster with a 5s connect timeout.
func EDSCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ADS()},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
}

// StaticCluster is a STATIC cluster with an inline load assignment.
func StaticCluster(name string, endpoints ...*endpointv3.LbEndpoint) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		LoadAssignment:       LoadAssignment(name, endpoints...),
	}
}

// Endpoint is a HEALTHY endpoint of weight 1 at "ip:port".
func Endpoint(addr string) *endpointv3.LbEndpoint {
	return WeightedEndpoint(addr, corev3.HealthStatus_HEALTHY, 1)
}

// WeightedEndpoint is an endpoint with a health status and weight.
func WeightedEndpoint(addr string, health corev3.HealthStatus, weight uint32) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: SocketAddress(addr),
		}},
		HealthStatus:        health,
		LoadBalancingWeight: wrapperspb.UInt32(weight),
	}
}

// WithInstanceID names the Consul instance behind e in its metadata, as
// the control plane does (docs/xds.md), and returns e.
func WithInstanceID(e *endpointv3.LbEndpoint, id string) *endpointv3.LbEndpoint {
	e.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"weft": {Fields: map[string]*structpb.Value{"instance_id": structpb.NewStringValue(id)}},
	}}
	return e
}

// LoadAssignment is a load assignment with one locality.
func LoadAssignment(name string, endpoints ...*endpointv3.LbEndpoint) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: endpoints}},
	}
}

// Secret names of the mTLS contract.
const (
	LeafSecret  = "weft-leaf"
	RootsSecret = "weft-roots"
)

// RootsSecretOf is the trust bundle secret holding rootsPEM.
func RootsSecretOf(rootsPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: RootsSecret,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: rootsPEM}},
		}},
	}
}

// CommonTLS is the TLS context of docs/xds.md: the local leaf, the bundle
// over ADS and a URI SAN matcher on the peer.
func CommonTLS(peer *matcherv3.StringMatcher, alpn ...string) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: LeafSecret}},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlsv3.CertificateValidationContext{
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: peer}},
				},
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: RootsSecret, SdsConfig: ADS()},
			},
		},
		AlpnProtocols: alpn,
	}
}

// TransportSocket wraps a TLS context.
func TransportSocket(ctx proto.Message) *corev3.TransportSocket {
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: Any(ctx)}}
}

// DownstreamTLS is the public listener's transport socket: a client
// certificate from trustDomain is required.
func DownstreamTLS(trustDomain string, alpn ...string) *corev3.TransportSocket {
	return TransportSocket(&tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: CommonTLS(&matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://" + trustDomain + "/"},
		}, alpn...),
	})
}

// UpstreamTLS is a cluster's transport socket: the server must present
// spiffeID.
func UpstreamTLS(sni, spiffeID string, alpn ...string) *corev3.TransportSocket {
	return TransportSocket(&tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: CommonTLS(&matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: spiffeID},
		}, alpn...),
	})
}

// WithListenerTLS puts ts on the listener's filter chain.
func WithListenerTLS(l *listenerv3.Listener, ts *corev3.TransportSocket) *listenerv3.Listener {
	l.FilterChains[0].TransportSocket = ts
	return l
}

// WithClusterTLS puts ts on the cluster.
func WithClusterTLS(c *clusterv3.Cluster, ts *corev3.TransportSocket) *clusterv3.Cluster {
	c.TransportSocket = ts
	return c
}

// WithHTTP2 makes a cluster's upstream protocol HTTP/2.
func WithHTTP2(c *clusterv3.Cluster) *clusterv3.Cluster {
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Any(&upstreamhttpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
			}},
		}),
	}
	return c
}

// RBAC is an RBAC rule set.
func RBAC(action rbacv3.RBAC_Action, policies map[string]*rbacv3.Policy) *rbacv3.RBAC {
	return &rbacv3.RBAC{Action: action, Policies: policies}
}

// Policy is a policy of permissions and principals.
func Policy(perms []*rbacv3.Permission, principals ...*rbacv3.Principal) *rbacv3.Policy {
	return &rbacv3.Policy{Permissions: perms, Principals: principals}
}

// AnyPermission matches everything.
func AnyPermission() []*rbacv3.Permission {
	return []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}}
}

// PathPrefix is a url_path prefix permission.
func PathPrefix(prefix string) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
		Rule: &matcherv3.PathMatcher_Path{Path: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: prefix}}},
	}}}
}

// Principal matches an authenticated peer's SPIFFE ID exactly.
func Principal(spiffeID string) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: spiffeID}},
	}}}
}

// NetworkRBAC is an envoy.filters.network.rbac filter.
func NetworkRBAC(rules *rbacv3.RBAC) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.rbac",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: Any(&rbacnetv3.RBAC{StatPrefix: "rbac", Rules: rules})},
	}
}

// HTTPRBAC is an envoy.filters.http.rbac filter.
func HTTPRBAC(rules *rbacv3.RBAC) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.rbac",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Any(&rbachttpv3.RBAC{Rules: rules})},
	}
}

// OpenTelemetryTracing is the HCM tracing config the control plane sends:
// the OpenTelemetry tracer exporting over OTLP/gRPC to cluster, spans of
// service, percent of new traces sampled.
func OpenTelemetryTracing(cluster, service string, percent float64) *hcmv3.HttpConnectionManager_Tracing {
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: percent},
		Provider: &tracev3.Tracing_Http{
			Name: "envoy.tracers.opentelemetry",
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: Any(&tracev3.OpenTelemetryConfig{
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster},
				}},
				ServiceName: service,
			})},
		},
	}
}

// WithHCM edits the http_connection_manager of l's first filter chain
// (its last network filter) in place and returns l.
func WithHCM(l *listenerv3.Listener, edit func(*hcmv3.HttpConnectionManager)) *listenerv3.Listener {
	fs := l.GetFilterChains()[0].GetFilters()
	f := fs[len(fs)-1]
	var hcm hcmv3.HttpConnectionManager
	if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		panic(err)
	}
	edit(&hcm)
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: Any(&hcm)}
	return l
}

// WithDirection sets l's traffic_direction and returns l.
func WithDirection(l *listenerv3.Listener, d corev3.TrafficDirection) *listenerv3.Listener {
	l.TrafficDirection = d
	return l
}
