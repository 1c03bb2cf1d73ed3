package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// memExporter keeps the spans it exports, also across Shutdown (unlike
// tracetest.InMemoryExporter, which forgets them), and tells when it is
// shut down.
type memExporter struct {
	mem      *tracetest.InMemoryExporter
	endpoint Endpoint
	once     sync.Once
	shutdown chan struct{}
}

func newMemExporter(e Endpoint) *memExporter {
	return &memExporter{mem: tracetest.NewInMemoryExporter(), endpoint: e, shutdown: make(chan struct{})}
}

func (m *memExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	return m.mem.ExportSpans(ctx, spans)
}

func (m *memExporter) Shutdown(context.Context) error {
	m.once.Do(func() { close(m.shutdown) })
	return nil
}

func (m *memExporter) spans() tracetest.SpanStubs { return m.mem.GetSpans() }

// memProviders are Providers whose exporters keep spans in memory; the
// collector cluster "otel" resolves to 127.0.0.1:4317.
type memProviders struct {
	*Providers
	mu        sync.Mutex
	exporters []*memExporter
}

func newMemProviders(t *testing.T) *memProviders {
	t.Helper()
	mp := &memProviders{}
	mp.Providers = NewProviders(Options{
		Resolve: func(cluster string) (string, bool) { return "127.0.0.1:4317", cluster == "otel" },
		NewExporter: func(_ context.Context, e Endpoint) (sdktrace.SpanExporter, error) {
			mp.mu.Lock()
			defer mp.mu.Unlock()
			exp := newMemExporter(e)
			mp.exporters = append(mp.exporters, exp)
			return exp, nil
		},
		Logger: testLogger(t),
	})
	t.Cleanup(func() { mp.Close(context.Background()) })
	return mp
}

func (mp *memProviders) exporter(i int) *memExporter {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return mp.exporters[i]
}

func (mp *memProviders) count() int {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return len(mp.exporters)
}

// acquire returns a Tracer of service with the given sampling ratio,
// released at the end of the test.
func (mp *memProviders) acquire(t *testing.T, service string, ratio float64) *Tracer {
	t.Helper()
	tr, err := mp.Acquire(&Config{Collector: Collector{Cluster: "otel"}, ServiceName: service, SamplingRatio: ratio})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Release)
	return tr
}

// flushed returns the spans a Tracer's provider exported once flushed.
func flushed(t *testing.T, tr *Tracer, exp *memExporter) tracetest.SpanStubs {
	t.Helper()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.spans()
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func newRequest(method, target string, header http.Header) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	return r
}

func grpcRequest(path string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://api:9191"+path, nil)
	r.ProtoMajor, r.ProtoMinor, r.Proto = 2, 0, "HTTP/2.0"
	r.Header.Set("Content-Type", "application/grpc+proto")
	return r
}

// testLogger routes logs to t.Log until the test ends; background
// goroutines that outlive it (a provider's last export) log nowhere.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
