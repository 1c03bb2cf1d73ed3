package tracing

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func envoyGRPC(cluster string) *corev3.GrpcService {
	return &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}}}
}

// hcmTracing is the tracing config the control plane sends, with otel
// changed by edit.
func hcmTracing(t *testing.T, percent *typev3.Percent, otel *tracev3.OpenTelemetryConfig) *hcmv3.HttpConnectionManager_Tracing {
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: percent,
		Provider: &tracev3.Tracing_Http{
			Name:       OpenTelemetryTracer,
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: mustAny(t, otel)},
		},
	}
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name    string
		in      *hcmv3.HttpConnectionManager_Tracing
		want    *Config
		wantErr string
	}{
		{name: "nil: tracing off", in: nil, want: nil},
		{name: "no provider: tracing off", in: &hcmv3.HttpConnectionManager_Tracing{RandomSampling: &typev3.Percent{Value: 10}}, want: nil},
		{
			name: "the control plane's: envoy_grpc cluster, service, 25 %",
			in:   hcmTracing(t, &typev3.Percent{Value: 25}, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("weft-otlp"), ServiceName: "web"}),
			want: &Config{Collector: Collector{Protocol: GRPC, Cluster: "weft-otlp"}, ServiceName: "web", SamplingRatio: 0.25},
		},
		{
			name: "no random_sampling: Envoy's default, 100 %",
			in:   hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("c")}),
			want: &Config{Collector: Collector{Protocol: GRPC, Cluster: "c"}, SamplingRatio: 1},
		},
		{
			name: "google_grpc target and timeout",
			in: hcmTracing(t, &typev3.Percent{Value: 0}, &tracev3.OpenTelemetryConfig{GrpcService: &corev3.GrpcService{
				TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: "otel:4317", StatPrefix: "otlp"}},
				Timeout:         durationpb.New(3 * time.Second),
			}}),
			want: &Config{Collector: Collector{Protocol: GRPC, Address: "otel:4317", Timeout: 3 * time.Second}, SamplingRatio: 0},
		},
		{
			name: "http_service with path",
			in: hcmTracing(t, &typev3.Percent{Value: 100}, &tracev3.OpenTelemetryConfig{HttpService: &corev3.HttpService{
				HttpUri: &corev3.HttpUri{Uri: "http://otel:4318/otlp/v1/traces", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "otel-http"}, Timeout: durationpb.New(time.Second)},
			}}),
			want: &Config{Collector: Collector{Protocol: HTTP, Cluster: "otel-http", Path: "/otlp/v1/traces", Timeout: time.Second}, SamplingRatio: 1},
		},
		{
			name: "http_service without scheme or path",
			in: hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{HttpService: &corev3.HttpService{
				HttpUri: &corev3.HttpUri{Uri: "otel:4318", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "otel-http"}},
			}}),
			want: &Config{Collector: Collector{Protocol: HTTP, Cluster: "otel-http", Path: DefaultHTTPPath}, SamplingRatio: 1},
		},
		{
			name:    "sampling over 100",
			in:      hcmTracing(t, &typev3.Percent{Value: 101}, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("c")}),
			wantErr: "tracing.random_sampling 101: want 0 to 100",
		},
		{
			name: "another tracer",
			in: &hcmv3.HttpConnectionManager_Tracing{Provider: &tracev3.Tracing_Http{
				Name:       "envoy.tracers.zipkin",
				ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: mustAny(t, &tracev3.ZipkinConfig{CollectorCluster: "z"})},
			}},
			wantErr: `tracing.provider: "envoy.tracers.zipkin" (type.googleapis.com/envoy.config.trace.v3.ZipkinConfig): only envoy.tracers.opentelemetry is supported`,
		},
		{
			name:    "provider without typed config",
			in:      &hcmv3.HttpConnectionManager_Tracing{Provider: &tracev3.Tracing_Http{Name: OpenTelemetryTracer}},
			wantErr: `tracing.provider: "envoy.tracers.opentelemetry": typed_config is required`,
		},
		{
			name:    "no service",
			in:      hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{ServiceName: "web"}),
			wantErr: "tracing.provider.typed_config: grpc_service or http_service is required",
		},
		{
			name:    "sampler extension",
			in:      hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("c"), Sampler: &corev3.TypedExtensionConfig{Name: "always_on", TypedConfig: mustAny(t, &structpb.Struct{})}}),
			wantErr: `tracing.provider.typed_config: sampler "always_on": not supported; use random_sampling`,
		},
		{
			name:    "resource detectors",
			in:      hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("c"), ResourceDetectors: []*corev3.TypedExtensionConfig{{Name: "env", TypedConfig: mustAny(t, &structpb.Struct{})}}}),
			wantErr: "tracing.provider.typed_config: resource_detectors: not supported",
		},
		{
			name:    "grpc metadata",
			in:      hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{GrpcService: &corev3.GrpcService{TargetSpecifier: envoyGRPC("c").TargetSpecifier, InitialMetadata: []*corev3.HeaderValue{{Key: "x-api-key", Value: "k"}}}}),
			wantErr: "tracing.provider.typed_config: grpc_service: initial_metadata: not supported",
		},
		{
			name:    "empty cluster name",
			in:      hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("")}),
			wantErr: "grpc_service: envoy_grpc.cluster_name is required",
		},
		{
			name: "both services",
			in: hcmTracing(t, nil, &tracev3.OpenTelemetryConfig{GrpcService: envoyGRPC("c"), HttpService: &corev3.HttpService{
				HttpUri: &corev3.HttpUri{Uri: "http://otel:4318", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "c"}},
			}}),
			wantErr: "grpc_service and http_service: set one",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compile(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Compile error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compile (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompileControlPlaneGolden compiles the tracing config that the
// control plane's translation golden file pins, so a change on either
// side that breaks the contract fails here.
func TestCompileControlPlaneGolden(t *testing.T) {
	raw, err := os.ReadFile("../../../controlplane/translate/testdata/tracing_to_collector.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	found := findKey(doc, "tracing")
	if len(found) == 0 {
		t.Fatal("golden file holds no HCM tracing config")
	}
	for _, v := range found {
		js, _ := json.Marshal(v)
		var tr hcmv3.HttpConnectionManager_Tracing
		if err := protojson.Unmarshal(js, &tr); err != nil {
			t.Fatalf("decode %s: %v", js, err)
		}
		got, err := Compile(&tr)
		if err != nil {
			t.Fatalf("Compile(%s): %v", js, err)
		}
		want := &Config{Collector: Collector{Protocol: GRPC, Cluster: "weft-otlp"}, ServiceName: "web", SamplingRatio: 0.25}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Compile (-want +got):\n%s", diff)
		}
	}
}

// findKey returns every value held under key anywhere in a decoded JSON
// document.
func findKey(v any, key string) []any {
	var out []any
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if k == key {
				out = append(out, child)
				continue
			}
			out = append(out, findKey(child, key)...)
		}
	case []any:
		for _, child := range x {
			out = append(out, findKey(child, key)...)
		}
	}
	return out
}
