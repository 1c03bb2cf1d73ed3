package translate

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// OTLPCluster is the cluster of the span collector.
const OTLPCluster = "weft-otlp"

const openTelemetryTracer = "envoy.tracers.opentelemetry"

// Tracing says where sidecars export spans and how many requests start a
// trace. Requests that arrive with a sampled trace context are always
// traced (parent-based sampling).
type Tracing struct {
	// Collector is the OTLP/gRPC endpoint's host and port.
	CollectorHost string
	CollectorPort int
	// SamplingPercent of requests without a trace context start one.
	SamplingPercent float64
}

// tracingFor is the HCM tracing config of a proxy of service, nil without
// tracing.
func (t *translator) tracingFor(service string) *hcmv3.HttpConnectionManager_Tracing {
	if t.mesh.Tracing == nil {
		return nil
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: t.mesh.Tracing.SamplingPercent},
		Provider: &tracev3.Tracing_Http{
			Name: openTelemetryTracer,
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: mustAny(&tracev3.OpenTelemetryConfig{
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: OTLPCluster},
				}},
				ServiceName: service,
			})},
		},
	}
}

// otlpCluster is the collector's cluster: OTLP over gRPC, so HTTP/2.
func otlpCluster(tr Tracing) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 OTLPCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: OTLPCluster,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{
				lbEndpoint(tr.CollectorHost, tr.CollectorPort, corev3.HealthStatus_HEALTHY, 1),
			}}},
		},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&upstreamhttpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
							Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
						},
					},
				},
			}),
		},
	}
}
