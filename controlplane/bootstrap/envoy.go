// Package bootstrap renders the bootstrap files that point an xDS client at
// Weft's control plane: Envoy's bootstrap, and gRPC's xDS bootstrap for
// proxyless services.
package bootstrap

import (
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/controlplane/translate"
)

// xdsCluster is the bootstrap's cluster for the control plane.
const xdsCluster = "weft-xds"

// Envoy describes an Envoy sidecar to bootstrap.
type Envoy struct {
	ProxyID   string // the sidecar's Consul service ID: the xDS node ID
	Service   string // the service it fronts: the node's cluster
	XDSAddr   string // control plane HOST:PORT
	AdminAddr string // Envoy's admin HOST:PORT
	// LeafCert and LeafKey are PEM files holding the sidecar's certificate
	// chain and key, served to Envoy as the weft-leaf secret. Weft never
	// sends private keys over xDS, so they come from the sidecar's host.
	LeafCert, LeafKey string
}

// EnvoyJSON renders and validates an Envoy v3 bootstrap.
func EnvoyJSON(e Envoy) ([]byte, error) {
	b, err := envoyBootstrap(e)
	if err != nil {
		return nil, err
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy bootstrap: %w", err)
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(b)
}

func envoyBootstrap(e Envoy) (*bootstrapv3.Bootstrap, error) {
	if e.ProxyID == "" {
		return nil, fmt.Errorf("envoy bootstrap: proxy ID is required")
	}
	xds, err := socket(e.XDSAddr, "xDS address")
	if err != nil {
		return nil, err
	}
	admin, err := socket(e.AdminAddr, "admin address")
	if err != nil {
		return nil, err
	}
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: e.ProxyID, Cluster: e.Service},
		Admin: &bootstrapv3.Admin{Address: admin},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: xdsCluster}}}},
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{xdsClusterFor(xds)}},
	}
	if e.LeafCert != "" || e.LeafKey != "" {
		if e.LeafCert == "" || e.LeafKey == "" {
			return nil, fmt.Errorf("envoy bootstrap: the leaf needs both a certificate and a key file")
		}
		b.StaticResources.Secrets = []*tlsv3.Secret{{Name: translate.LeafSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: e.LeafCert}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: e.LeafKey}},
		}}}}
	}
	return b, nil
}

func xdsClusterFor(addr *corev3.Address) *clusterv3.Cluster {
	h2, _ := anypb.New(&upstreamhttpv3.HttpProtocolOptions{UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}}})
	return &clusterv3.Cluster{
		Name:                          xdsCluster,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:                durationpb.New(5 * time.Second),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: xdsCluster, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}}}},
		}}},
	}
}

func socket(hostport, what string) (*corev3.Address, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("%s %q: bad port", what, hostport)
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}}, nil
}
