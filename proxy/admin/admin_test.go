package admin

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

type fakeSource struct {
	ready  error
	state  xds.State
	status xds.Status
}

func (f *fakeSource) Ready() error                 { return f.ready }
func (f *fakeSource) XDS() (xds.State, xds.Status) { return f.state, f.status }
func (f *fakeSource) Certs() Certs {
	return Certs{
		Identity:     identity.Status{Renewals: 2, Leaf: &identity.LeafInfo{SPIFFEID: "spiffe://weft.local/ns/default/dc/dc1/svc/web", Serial: "2a", SecondsToExpiry: 42}},
		TrustBundles: map[string][]mtls.RootInfo{"weft-roots": {{Subject: "CN=root", SHA256: "ab12"}}},
	}
}

func (f *fakeSource) Listeners() []listener.Info {
	return []listener.Info{{Name: "l", Address: "127.0.0.1:0", BoundAddress: "127.0.0.1:4242", Mode: "tcp"}}
}

func serve(t *testing.T, src Source, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src, slog.Default(), Controls{}).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestReady(t *testing.T) {
	tests := []struct {
		name     string
		ready    error
		wantCode int
		wantBody string
	}{
		{"ready", nil, http.StatusOK, "ready\n"},
		{"not ready", errors.New("waiting for the first xDS listeners"), http.StatusServiceUnavailable, "waiting for the first xDS listeners\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := serve(t, &fakeSource{ready: tt.ready}, "/ready")
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("GET /ready = %d %q, want %d %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestConfigDump(t *testing.T) {
	src := &fakeSource{
		state: xds.State{Listeners: xds.Resources{Version: "v1", Received: true, Items: map[string]proto.Message{
			"l": &listenerv3.Listener{Name: "l", StatPrefix: "p"},
		}}},
		status: xds.Status{Connected: true, Server: "cp:18000", Types: map[string]xds.TypeStatus{
			xds.ListenerType: {Version: "v1", LastNack: &xds.Event{Version: "v2", Nonce: "3", Error: `listener "bad": nope`}},
		}},
	}
	code, body := serve(t, src, "/config_dump")
	if code != http.StatusOK {
		t.Fatalf("GET /config_dump = %d %s", code, body)
	}
	var got struct {
		XDS struct {
			Connected bool
			Server    string
			Types     map[string]struct {
				Version  string
				LastNack struct{ Version, Error string } `json:"last_nack"`
			}
		}
		Resources map[string]struct {
			TypeURL string `json:"type_url"`
			Version string
			Items   map[string]map[string]any
		}
		Listeners []listener.Info
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if !got.XDS.Connected || got.XDS.Server != "cp:18000" {
		t.Errorf("xds status = %+v", got.XDS)
	}
	if n := got.XDS.Types[xds.ListenerType].LastNack; n.Version != "v2" || n.Error != `listener "bad": nope` {
		t.Errorf("last NACK = %+v", n)
	}
	lds := got.Resources["listeners"]
	if diff := cmp.Diff(map[string]map[string]any{"l": {"name": "l", "statPrefix": "p"}}, lds.Items); diff != "" || lds.Version != "v1" || lds.TypeURL != xds.ListenerType {
		t.Errorf("listeners dump %+v (-want +got items):\n%s", lds, diff)
	}
	for _, k := range []string{"clusters", "routes", "endpoints", "secrets"} {
		if _, ok := got.Resources[k]; !ok {
			t.Errorf("resources[%q] missing", k)
		}
	}
	if len(got.Listeners) != 1 || got.Listeners[0].BoundAddress != "127.0.0.1:4242" {
		t.Errorf("listeners = %+v", got.Listeners)
	}
}

func TestCerts(t *testing.T) {
	for _, path := range []string{"/certs", "/config_dump"} {
		code, body := serve(t, &fakeSource{}, path)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, code, body)
		}
		var got struct {
			Identity     map[string]any
			TrustBundles map[string][]map[string]any `json:"trust_bundles"`
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		raw := []byte(body)
		if path == "/config_dump" {
			raw = doc["certs"]
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		leaf, _ := got.Identity["leaf"].(map[string]any)
		if leaf["spiffe_id"] != "spiffe://weft.local/ns/default/dc/dc1/svc/web" || leaf["serial"] != "2a" || leaf["seconds_to_expiry"] != 42.0 {
			t.Errorf("GET %s: leaf = %v", path, leaf)
		}
		if roots := got.TrustBundles["weft-roots"]; len(roots) != 1 || roots[0]["sha256_fingerprint"] != "ab12" || roots[0]["subject"] != "CN=root" {
			t.Errorf("GET %s: trust bundles = %v", path, got.TrustBundles)
		}
	}
}

// metricsSource is a Source with its own registry.
type metricsSource struct {
	fakeSource
	reg *prometheus.Registry
}

func (m *metricsSource) Metrics() prometheus.Gatherer { return m.reg }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_proxy_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	tests := []struct {
		name string
		src  Source
		want []string
		not  []string
	}{
		{"the source's registry", &metricsSource{reg: reg}, []string{"weft_proxy_test_total 3"}, []string{"go_goroutines"}},
		{"else the default registry, with the Go and process collectors", &fakeSource{}, []string{"go_goroutines", "process_resident_memory_bytes"}, []string{"weft_proxy_test_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := serve(t, tt.src, "/metrics")
			if code != http.StatusOK {
				t.Fatalf("GET /metrics = %d %s", code, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("GET /metrics lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(body, s) {
					t.Errorf("GET /metrics has %q", s)
				}
			}
		})
	}
}

// TestProfiling: Go's profiles are served only when asked for.
func TestProfiling(t *testing.T) {
	for _, tt := range []struct {
		name      string
		profiling bool
		path      string
		wantCode  int
	}{
		{"off: index", false, "/debug/pprof/", http.StatusNotFound},
		{"off: cmdline", false, "/debug/pprof/cmdline", http.StatusNotFound},
		{"on: index", true, "/debug/pprof/", http.StatusOK},
		{"on: goroutines", true, "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{"on: heap", true, "/debug/pprof/heap", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler(&fakeSource{}, slog.Default(), Controls{Profiling: tt.profiling}).ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("GET %s = %d, want %d", tt.path, rec.Code, tt.wantCode)
			}
		})
	}
}
