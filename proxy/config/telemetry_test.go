package config

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

func TestCompileTracing(t *testing.T) {
	const name = "api:127.0.0.1:9191"
	traced := func(tr *hcmv3.HttpConnectionManager_Tracing) *Runtime {
		t.Helper()
		l := xdstest.WithHCM(xdstest.HTTPListenerRDS(name, "127.0.0.1:9191", "api"), func(h *hcmv3.HttpConnectionManager) { h.Tracing = tr })
		rt, err := Compile(state(l))
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		return rt
	}
	t.Run("control plane's config is applied", func(t *testing.T) {
		got := traced(xdstest.OpenTelemetryTracing("weft-otlp", "web", 25)).Listeners[0].HTTP.Tracing
		want := &tracing.Config{Collector: tracing.Collector{Protocol: tracing.GRPC, Cluster: "weft-otlp"}, ServiceName: "web", SamplingRatio: 0.25}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("HTTP.Tracing (-want +got):\n%s", diff)
		}
	})
	t.Run("no tracing config: tracing off", func(t *testing.T) {
		if got := traced(nil).Listeners[0].HTTP.Tracing; got != nil {
			t.Errorf("HTTP.Tracing = %+v, want nil", got)
		}
	})
	t.Run("another tracer is NACKed naming the listener", func(t *testing.T) {
		tr := &hcmv3.HttpConnectionManager_Tracing{Provider: &tracev3.Tracing_Http{
			Name:       "envoy.tracers.zipkin",
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: xdstest.Any(&tracev3.ZipkinConfig{CollectorCluster: "z", CollectorEndpoint: "/api/v2/spans"})},
		}}
		l := xdstest.WithHCM(xdstest.HTTPListenerRDS(name, "127.0.0.1:9191", "api"), func(h *hcmv3.HttpConnectionManager) { h.Tracing = tr })
		_, err := Compile(state(l))
		want := `listener "api:127.0.0.1:9191": filter chain 0: http_connection_manager: tracing.provider: "envoy.tracers.zipkin"`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Compile error = %v, want it to contain %q", err, want)
		}
	})
}

func TestCompileDirection(t *testing.T) {
	tests := []struct {
		name string
		dir  corev3.TrafficDirection
		tls  bool
		want Direction
	}{
		{"inbound", corev3.TrafficDirection_INBOUND, true, Inbound},
		{"outbound", corev3.TrafficDirection_OUTBOUND, false, Outbound},
		{"unspecified with mTLS: a public listener", corev3.TrafficDirection_UNSPECIFIED, true, Inbound},
		{"unspecified plaintext: an upstream listener", corev3.TrafficDirection_UNSPECIFIED, false, Outbound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := xdstest.WithDirection(xdstest.TCPListener("l", "127.0.0.1:9191", api), tt.dir)
			if tt.tls {
				l = xdstest.WithListenerTLS(l, xdstest.DownstreamTLS("weft.local"))
			}
			rt, err := Compile(state(l, xdstest.RootsSecretOf(pkitest.Bundle(pkitest.NewCA(t, "root")))))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := rt.Listeners[0].Direction; got != tt.want {
				t.Errorf("Direction = %s, want %s", got, tt.want)
			}
		})
	}
}
