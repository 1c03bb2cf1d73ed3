package listener

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/router"
	"github.com/weft-mesh/weft/proxy/telemetry"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// telemetryEnv is an env whose listeners record metrics in reg and
// spans in spans.
type telemetryEnv struct {
	*env
	reg     *prometheus.Registry
	spans   *tracetest.InMemoryExporter
	tracers *tracing.Providers
}

func newTelemetryEnv(t *testing.T) *telemetryEnv {
	t.Helper()
	te := &telemetryEnv{reg: prometheus.NewRegistry(), spans: tracetest.NewInMemoryExporter()}
	te.tracers = tracing.NewProviders(tracing.Options{
		Resolve: func(string) (string, bool) { return "collector:4317", true },
		NewExporter: func(context.Context, tracing.Endpoint) (sdktrace.SpanExporter, error) {
			return keepSpans{te.spans}, nil
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() { te.tracers.Close(context.Background()) })
	clusters := cluster.NewManager(cluster.Options{})
	m := NewManager(Options{
		Clusters:     clusters,
		RouterHooks:  router.Hooks{Attempt: telemetry.Transport, Observe: telemetry.Observe},
		Telemetry:    &telemetry.Telemetry{Metrics: metrics.New(te.reg)},
		Tracers:      te.tracers,
		DrainTimeout: wait,
		Logger:       slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(m.Close) // before the tracers close: Cleanups run last first
	te.env = &env{t: t, clusters: clusters, m: m}
	return te
}

// keepSpans keeps its spans past Shutdown (the in-memory exporter's
// Shutdown forgets them).
type keepSpans struct{ *tracetest.InMemoryExporter }

func (keepSpans) Shutdown(context.Context) error { return nil }

// value sums the series of family whose labels include want.
func (te *telemetryEnv) value(family string, want map[string]string) float64 {
	te.t.Helper()
	mfs, err := te.reg.Gather()
	if err != nil {
		te.t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// TestHTTPListenerTelemetry: an outbound HTTP listener with a tracing
// config starts a client span per request, injects it into the request
// sent upstream, and counts requests — its own local replies too — from
// its tracing config's service to the destination of its route
// configuration. Draining the listener releases its tracer, which flushes.
func TestHTTPListenerTelemetry(t *testing.T) {
	te := newTelemetryEnv(t)
	seen := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	l := httpListener(t, "api:127.0.0.1:0", "127.0.0.1:0", prefixRoute("/items", "api"))
	l.HTTP.RouteConfigName = "api"
	l.HTTP.Tracing = &tracing.Config{Collector: tracing.Collector{Cluster: "weft-otlp"}, ServiceName: "web", SamplingRatio: 1}
	te.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", strings.TrimPrefix(backend.URL, "http://"))}, l))
	base := "http://" + te.addr("api:127.0.0.1:0")

	for path, want := range map[string]int{"/items": 200, "/nowhere": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want && !(path == "/nowhere" && resp.Header.Get("X-Weft-Error") == "no_route") {
			t.Fatalf("GET %s: %d (x-weft-error %q)", path, resp.StatusCode, resp.Header.Get("X-Weft-Error"))
		}
	}
	traceparent := <-seen

	labels := map[string]string{"direction": "outbound", "source": "web", "destination": "api"}
	if got := te.value("weft_proxy_requests_total", labels); got != 2 {
		t.Errorf("weft_proxy_requests_total%v = %v, want 2", labels, got)
	}
	if got := te.value("weft_proxy_requests_total", map[string]string{"reason": "no_route"}); got != 1 {
		t.Errorf("no_route replies counted %v times, want 1", got)
	}

	te.m.Close() // drains and releases the tracer, which flushes its spans
	if err := te.tracers.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := te.spans.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (one per request)", len(spans))
	}
	var forwarded bool
	names := map[string][]string{} // span name → its events
	for _, s := range spans {
		if s.SpanKind.String() != "client" {
			t.Errorf("span %q kind %s, want a client span", s.Name, s.SpanKind)
		}
		if strings.Contains(traceparent, s.SpanContext.SpanID().String()) {
			forwarded = true
		}
		names[s.Name] = []string{}
		for _, e := range s.Events {
			names[s.Name] = append(names[s.Name], e.Name)
		}
	}
	if !forwarded {
		t.Errorf("upstream saw traceparent %q, not one of the listener's spans", traceparent)
	}
	// The routed request is named by its route; no_route is the sidecar's
	// own reply, named by the method only.
	if diff := cmp.Diff(map[string][]string{"GET /items*": {}, "GET": {"local_reply"}}, names); diff != "" {
		t.Errorf("span names and events (-want +got):\n%s", diff)
	}
}

// TestTCPListenerTelemetry: TCP connections are counted with the bytes
// each way.
func TestTCPListenerTelemetry(t *testing.T) {
	te := newTelemetryEnv(t)
	te.mustApply(runtime(map[string]*config.Cluster{"echo": staticCluster("echo", echoServer(t))}, tcpListener("echo:127.0.0.1:0", "127.0.0.1:0", "echo")))
	c := dial(t, te.addr("echo:127.0.0.1:0"))
	io.WriteString(c, "hello, mesh")
	c.(interface{ CloseWrite() error }).CloseWrite()
	if got := readAll(t, c); got != "hello, mesh" {
		t.Fatalf("echoed %q", got)
	}
	te.m.Close() // waits for the connection's end
	labels := map[string]string{"direction": "outbound", "destination": "echo"}
	for family, want := range map[string]float64{
		"weft_proxy_tcp_connections_opened_total": 1,
		"weft_proxy_tcp_connections_closed_total": 1,
	} {
		if got := te.value(family, labels); got != want {
			t.Errorf("%s = %v, want %v", family, got, want)
		}
	}
	for flow, want := range map[string]float64{"received": 11, "sent": 11} {
		if got := te.value("weft_proxy_tcp_bytes_total", map[string]string{"flow": flow, "destination": "echo"}); got != want {
			t.Errorf("bytes %s = %v, want %v", flow, got, want)
		}
	}
}
