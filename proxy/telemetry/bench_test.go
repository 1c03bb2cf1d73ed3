package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/tap"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// otlpTracer is a real OTLP/gRPC tracer exporting to addr, sampling all.
func otlpTracer(tb testing.TB, addr string) *tracing.Tracer {
	tb.Helper()
	ps := tracing.NewProviders(tracing.Options{
		QueueSize: 256, BatchTimeout: time.Millisecond, ExportTimeout: 200 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond, Logger: quiet,
	})
	tr, err := ps.Acquire(&tracing.Config{Collector: tracing.Collector{Address: addr}, ServiceName: "api", SamplingRatio: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		tr.Release()
		ps.Close(context.Background())
	})
	return tr
}

// TestCollectorBlackHoledRequestsSucceed: with the collector black-holed,
// every request still succeeds and is counted.
func TestCollectorBlackHoledRequestsSucceed(t *testing.T) {
	e := newEnv(t)
	h, finished := done(e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), Listener{Direction: metrics.Inbound, Service: "api", Tracer: otlpTracer(t, testnet.BlackHole(t))}))
	srv := serve(t, h, &Peer{Service: "web"})
	const n = 300
	for range n {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for range n {
		wait(t, finished, "request")
	}
	if got := e.counter(t, "weft_proxy_requests_total", map[string]string{"code": "200", "source": "web"}); got != n {
		t.Errorf("counted %v requests, want %d", got, n)
	}
}

// BenchmarkMiddleware is Wrap's overhead per request on top of a handler
// that writes a small body: metrics and access log, then tracing with a
// sampled span, then the same with the collector black-holed.
func BenchmarkMiddleware(b *testing.B) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	newTel := func(b *testing.B) *Telemetry {
		al := accesslog.New(io.Discard, accesslog.Options{Queue: 4096, Logger: quiet})
		b.Cleanup(al.Close)
		return &Telemetry{Metrics: metrics.New(prometheus.NewRegistry()), AccessLog: al}
	}
	cases := []struct {
		name string
		h    func(b *testing.B) http.Handler
	}{
		{"bare", func(*testing.B) http.Handler { return app }},
		{"metrics", func(b *testing.B) http.Handler {
			return (&Telemetry{Metrics: metrics.New(prometheus.NewRegistry())}).Wrap(app, Listener{Direction: metrics.Inbound, Service: "api"})
		}},
		{"metrics+accesslog", func(b *testing.B) http.Handler {
			return newTel(b).Wrap(app, Listener{Direction: metrics.Inbound, Service: "api"})
		}},
		{"metrics+accesslog+tap/idle", func(b *testing.B) http.Handler {
			t := newTel(b)
			t.Tap = tap.NewHub() // a tap stream open, nobody tapping
			return t.Wrap(app, Listener{Direction: metrics.Inbound, Service: "api"})
		}},
		{"metrics+accesslog+tap/tapping-other-service", func(b *testing.B) http.Handler {
			t := newTel(b)
			t.Tap = tap.NewHub()
			t.Tap.Start(&tapv1.TapCommand{TapId: "t", Filter: &tapv1.TapFilter{Destination: "db"}})
			return t.Wrap(app, Listener{Direction: metrics.Inbound, Service: "api"})
		}},
		{"metrics+accesslog+tracing/unsampled", func(b *testing.B) http.Handler {
			return newTel(b).Wrap(app, Listener{Direction: metrics.Inbound, Service: "api", Tracer: discardTracer(b, 0)})
		}},
		{"metrics+accesslog+tracing/sampled", func(b *testing.B) http.Handler {
			return newTel(b).Wrap(app, Listener{Direction: metrics.Inbound, Service: "api", Tracer: discardTracer(b, 1)})
		}},
		{"metrics+accesslog+tracing/sampled/collector=blackhole", func(b *testing.B) http.Handler {
			return newTel(b).Wrap(app, Listener{Direction: metrics.Inbound, Service: "api", Tracer: otlpTracer(b, testnet.BlackHole(b))})
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.h(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "http://api/items", nil)
				r = r.WithContext(WithPeer(r.Context(), Peer{Service: "web"}))
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(r.Header)
					clear(w.h)
					h.ServeHTTP(w, r)
				}
			})
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// discardTracer is a tracer whose spans go nowhere, sampling ratio of new traces.
func discardTracer(b *testing.B, ratio float64) *tracing.Tracer {
	ps := tracing.NewProviders(tracing.Options{Logger: quiet, NewExporter: func(context.Context, tracing.Endpoint) (sdktrace.SpanExporter, error) { return discard{}, nil }})
	tr, err := ps.Acquire(&tracing.Config{Collector: tracing.Collector{Address: "collector:4317"}, SamplingRatio: ratio})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		tr.Release()
		ps.Close(context.Background())
	})
	return tr
}
