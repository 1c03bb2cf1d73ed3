package discovery

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

func ptr[T any](v T) *T { return &v }

func TestParseUpstreamConfigMap(t *testing.T) {
	tests := []struct {
		name         string
		config       map[string]any
		want         *catalog.UpstreamConfig
		wantProblems []string
	}{
		{name: "none", config: map[string]any{"protocol": "http", "envoy_cluster_json": "{}"}},
		{
			name: "snake case, as registered through the API (JSON numbers)",
			config: map[string]any{
				"connect_timeout_ms": float64(1500),
				"limits":             map[string]any{"max_connections": float64(10), "max_pending_requests": float64(0)},
				"passive_health_check": map[string]any{
					"interval": "10s", "max_failures": float64(3), "enforcing_consecutive_5xx": float64(50),
					"max_ejection_percent": float64(20), "base_ejection_time": "45s",
				},
			},
			want: &catalog.UpstreamConfig{
				ConnectTimeout: 1500 * time.Millisecond,
				Limits:         &catalog.UpstreamLimits{MaxConnections: ptr(10), MaxPendingRequests: ptr(0)},
				PassiveHealthCheck: &catalog.PassiveHealthCheck{Interval: 10 * time.Second, MaxFailures: 3,
					EnforcingConsecutive5xx: ptr[uint32](50), MaxEjectionPercent: ptr[uint32](20), BaseEjectionTime: ptr(45 * time.Second)},
			},
		},
		{
			name: "CamelCase keys and HCL's one-element lists",
			config: map[string]any{
				"ConnectTimeoutMs":   "250",
				"Limits":             []any{map[string]any{"MaxConcurrentRequests": 7}},
				"PassiveHealthCheck": []map[string]any{{"MaxFailures": 2}},
			},
			want: &catalog.UpstreamConfig{
				ConnectTimeout:     250 * time.Millisecond,
				Limits:             &catalog.UpstreamLimits{MaxConcurrentRequests: ptr(7)},
				PassiveHealthCheck: &catalog.PassiveHealthCheck{MaxFailures: 2},
			},
		},
		{
			name: "a bad key is reported, the others kept",
			config: map[string]any{
				"limits":               map[string]any{"max_connections": "ten"},
				"passive_health_check": map[string]any{"interval": "soon"},
				"connect_timeout_ms":   1000,
			},
			want: &catalog.UpstreamConfig{ConnectTimeout: time.Second},
			wantProblems: []string{
				`'limits.max_connections' cannot parse value as 'int': strconv.ParseInt: invalid syntax`,
				`'passive_health_check.interval' time: invalid duration`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := parseUpstreamConfigMap(tt.config)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantProblems, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertServiceDefaultsUpstreamConfig(t *testing.T) {
	got := convertServiceDefaults([]api.ConfigEntry{&api.ServiceConfigEntry{Name: "web", Protocol: "HTTP", UpstreamConfig: &api.UpstreamConfiguration{
		Defaults: &api.UpstreamConfig{ConnectTimeoutMs: 2000, Limits: &api.UpstreamLimits{MaxConnections: ptr(100)}},
		Overrides: []*api.UpstreamConfig{
			{Name: "api", Protocol: "GRPC", PassiveHealthCheck: &api.PassiveHealthCheck{Interval: time.Second, MaxFailures: 5, BaseEjectionTime: ptr(time.Minute)}},
			{Name: "db", Peer: "east", ConnectTimeoutMs: 1},
			{ConnectTimeoutMs: 1},
		},
	}}})
	want := map[string]*catalog.ServiceDefaults{"web": {Name: "web", Protocol: "http",
		UpstreamConfig: &catalog.UpstreamConfiguration{
			Defaults: &catalog.UpstreamConfig{ConnectTimeout: 2 * time.Second, Limits: &catalog.UpstreamLimits{MaxConnections: ptr(100)}},
			Overrides: map[string]*catalog.UpstreamConfig{"api": {Protocol: "grpc",
				PassiveHealthCheck: &catalog.PassiveHealthCheck{Interval: time.Second, MaxFailures: 5, BaseEjectionTime: ptr(time.Minute)}}},
		},
		Unsupported: []string{`UpstreamConfig.Overrides[1].Peer = "east"`, "UpstreamConfig.Overrides[2] has no Name"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
