// Package tracing is weft-proxy's OpenTelemetry tracing: it compiles the
// tracing settings of an http_connection_manager (Compile), shares one
// OpenTelemetry SDK TracerProvider per collector and service name between
// the listeners that use them (Providers), and gives the request path
// spans with HTTP and gRPC semantic-convention attributes (Tracer) and
// trace-context propagation (Extract, Inject).
//
// Spans are exported over OTLP through the SDK's batch span processor with
// a bounded queue that drops spans when full: ending a span never blocks,
// and a slow, failing or unreachable collector never slows or fails a
// request.
package tracing

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

// OpenTelemetryTracer is the name of Envoy's OpenTelemetry tracer, the only
// tracing provider weft-proxy applies.
const OpenTelemetryTracer = "envoy.tracers.opentelemetry"

var openTelemetryType = "type.googleapis.com/" + string(proto.MessageName(&tracev3.OpenTelemetryConfig{}))

// Protocol is how spans travel to the collector.
type Protocol uint8

const (
	// GRPC is OTLP/gRPC (grpc_service).
	GRPC Protocol = iota
	// HTTP is OTLP/HTTP with protobuf bodies (http_service).
	HTTP
)

func (p Protocol) String() string {
	if p == HTTP {
		return "otlp/http"
	}
	return "otlp/grpc"
}

// DefaultHTTPPath is the OTLP/HTTP path of traces.
const DefaultHTTPPath = "/v1/traces"

// Collector says where spans are exported.
type Collector struct {
	Protocol Protocol
	// Cluster is the collector's cluster (grpc_service.envoy_grpc.cluster_name
	// or http_service.http_uri.cluster); Options.Resolve turns it into an
	// address. Empty when Address is set.
	Cluster string
	// Address is a "host:port" used as is (grpc_service.google_grpc.target_uri).
	Address string
	// Path is the OTLP/HTTP URL path (from http_service.http_uri.uri).
	Path string
	// Timeout bounds one export (grpc_service.timeout or
	// http_service.http_uri.timeout); zero means the default.
	Timeout time.Duration
}

// Config is a compiled http_connection_manager tracing config. It is
// comparable and immutable.
type Config struct {
	Collector Collector
	// ServiceName is the service.name of exported spans; empty means
	// Options.DefaultServiceName.
	ServiceName string
	// SamplingRatio is the fraction (0 to 1) of requests without a trace
	// context that start a sampled trace (random_sampling / 100; default 1).
	// Requests with a trace context follow its sampled flag.
	SamplingRatio float64
}

// Compile compiles an http_connection_manager's tracing settings. It
// returns nil, nil when t is nil or names no provider (tracing off).
//
// Applied: provider envoy.tracers.opentelemetry with grpc_service
// (envoy_grpc.cluster_name, or google_grpc.target_uri without credentials;
// timeout) or http_service (http_uri.uri path, cluster, timeout),
// service_name, and random_sampling. Accepted but not applied:
// client_sampling, overall_sampling, verbose, max_path_tag_length,
// custom_tags, spawn_upstream_span, operation, max_cache_size. Rejected,
// with an error naming the field: other providers, exporter extensions,
// resource_detectors, sampler extensions, gRPC credentials or metadata,
// HTTP headers to add, and a random_sampling outside 0–100.
func Compile(t *hcmv3.HttpConnectionManager_Tracing) (*Config, error) {
	if t == nil || t.GetProvider() == nil {
		return nil, nil
	}
	ratio, err := samplingRatio(t)
	if err != nil {
		return nil, err
	}
	otel, err := unpackOpenTelemetry(t.GetProvider())
	if err != nil {
		return nil, fmt.Errorf("tracing.provider: %w", err)
	}
	col, err := compileOpenTelemetry(otel)
	if err != nil {
		return nil, fmt.Errorf("tracing.provider.typed_config: %w", err)
	}
	return &Config{Collector: col, ServiceName: otel.GetServiceName(), SamplingRatio: ratio}, nil
}

func samplingRatio(t *hcmv3.HttpConnectionManager_Tracing) (float64, error) {
	p := t.GetRandomSampling()
	if p == nil {
		return 1, nil
	}
	if v := p.GetValue(); v < 0 || v > 100 || math.IsNaN(v) {
		return 0, fmt.Errorf("tracing.random_sampling %v: want 0 to 100", v)
	}
	return p.GetValue() / 100, nil
}

func unpackOpenTelemetry(p *tracev3.Tracing_Http) (*tracev3.OpenTelemetryConfig, error) {
	typed := p.GetTypedConfig()
	switch {
	case typed == nil:
		return nil, fmt.Errorf("%q: typed_config is required", p.GetName())
	case typed.GetTypeUrl() != openTelemetryType:
		return nil, fmt.Errorf("%q (%s): only %s is supported", p.GetName(), typed.GetTypeUrl(), OpenTelemetryTracer)
	}
	var cfg tracev3.OpenTelemetryConfig
	if err := typed.UnmarshalTo(&cfg); err != nil {
		return nil, fmt.Errorf("%q: %w", p.GetName(), err)
	}
	return &cfg, nil
}

func compileOpenTelemetry(c *tracev3.OpenTelemetryConfig) (Collector, error) {
	switch {
	case c.GetExporter() != nil:
		return Collector{}, fmt.Errorf("exporter %q: not supported", c.GetExporter().GetName())
	case len(c.GetResourceDetectors()) > 0:
		return Collector{}, errors.New("resource_detectors: not supported")
	case c.GetSampler() != nil:
		return Collector{}, fmt.Errorf("sampler %q: not supported; use random_sampling", c.GetSampler().GetName())
	case c.GetGrpcService() != nil && c.GetHttpService() != nil:
		return Collector{}, errors.New("grpc_service and http_service: set one")
	case c.GetGrpcService() != nil:
		col, err := compileGRPCService(c.GetGrpcService())
		if err != nil {
			return Collector{}, fmt.Errorf("grpc_service: %w", err)
		}
		return col, nil
	case c.GetHttpService() != nil:
		col, err := compileHTTPService(c.GetHttpService())
		if err != nil {
			return Collector{}, fmt.Errorf("http_service: %w", err)
		}
		return col, nil
	}
	return Collector{}, errors.New("grpc_service or http_service is required")
}

func compileGRPCService(s *corev3.GrpcService) (Collector, error) {
	if len(s.GetInitialMetadata()) > 0 {
		return Collector{}, errors.New("initial_metadata: not supported")
	}
	col := Collector{Protocol: GRPC, Timeout: s.GetTimeout().AsDuration()}
	switch {
	case s.GetEnvoyGrpc() != nil:
		col.Cluster = s.GetEnvoyGrpc().GetClusterName()
		if col.Cluster == "" {
			return Collector{}, errors.New("envoy_grpc.cluster_name is required")
		}
	case s.GetGoogleGrpc() != nil:
		g := s.GetGoogleGrpc()
		if g.GetChannelCredentials() != nil || len(g.GetCallCredentials()) > 0 {
			return Collector{}, errors.New("google_grpc: credentials are not supported")
		}
		col.Address = g.GetTargetUri()
		if col.Address == "" {
			return Collector{}, errors.New("google_grpc.target_uri is required")
		}
	default:
		return Collector{}, errors.New("envoy_grpc or google_grpc is required")
	}
	return col, nil
}

func compileHTTPService(s *corev3.HttpService) (Collector, error) {
	if len(s.GetRequestHeadersToAdd()) > 0 {
		return Collector{}, errors.New("request_headers_to_add: not supported")
	}
	hu := s.GetHttpUri()
	col := Collector{Protocol: HTTP, Cluster: hu.GetCluster(), Timeout: hu.GetTimeout().AsDuration(), Path: DefaultHTTPPath}
	if col.Cluster == "" {
		return Collector{}, errors.New("http_uri.cluster is required")
	}
	raw := hu.GetUri()
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Collector{}, fmt.Errorf("http_uri.uri %q: %w", hu.GetUri(), err)
	}
	if u.Path != "" {
		col.Path = u.Path
	}
	return col, nil
}
