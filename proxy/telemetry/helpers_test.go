package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/weft-mesh/weft/internal/syncbuf"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is one sidecar's telemetry with everything observable: a registry,
// an access log in memory, spans in memory.
type env struct {
	reg   *prometheus.Registry
	tel   *Telemetry
	log   *syncBuffer
	spans *tracetest.InMemoryExporter
	ps    *tracing.Providers
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{reg: prometheus.NewRegistry(), log: &syncBuffer{}, spans: tracetest.NewInMemoryExporter()}
	e.tel = &Telemetry{Metrics: metrics.New(e.reg), AccessLog: accesslog.New(e.log, accesslog.Options{Logger: quiet})}
	e.ps = tracing.NewProviders(tracing.Options{
		NewExporter: func(context.Context, tracing.Endpoint) (sdktrace.SpanExporter, error) { return e.spans, nil },
		Logger:      quiet,
	})
	t.Cleanup(func() {
		e.tel.AccessLog.Close()
		e.ps.Close(context.Background())
	})
	return e
}

// tracer acquires a tracer for service, sampling every new trace.
func (e *env) tracer(t *testing.T, service string) *tracing.Tracer {
	t.Helper()
	tr, err := e.ps.Acquire(&tracing.Config{Collector: tracing.Collector{Address: "collector:4317"}, ServiceName: service, SamplingRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Release)
	return tr
}

// flushedSpans returns the spans exported so far, after flushing tr.
func (e *env) flushedSpans(t *testing.T, tr *tracing.Tracer) tracetest.SpanStubs {
	t.Helper()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e.spans.GetSpans()
}

// lines closes the access log and returns its lines.
func (e *env) lines(t *testing.T) []accesslog.Entry {
	t.Helper()
	e.tel.AccessLog.Close()
	return e.log.entries(t)
}

// counter returns the value of the counter series name{labels}, summed
// over the labels not given.
func (e *env) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

type syncBuffer struct{ syncbuf.Buffer }

func (b *syncBuffer) entries(t *testing.T) []accesslog.Entry {
	t.Helper()
	var out []accesslog.Entry
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var e accesslog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// forwarder is a minimal sidecar hop: it names the route (template "/*")
// and proxies to target through telemetry.Transport, as proxy/listener's
// forwarder would.
func forwarder(target string, route string) http.Handler {
	u, _ := url.Parse(target)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		Transport: Transport(http.DefaultTransport.(*http.Transport).Clone()),
		ErrorLog:  slog.NewLogLogger(quiet.Handler(), slog.LevelDebug),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r.Context(), route, "/*")
		rp.ServeHTTP(w, r)
	})
}

// serve runs h on loopback; peer, when set, is every connection's verified
// identity (what the listener's ConnContext would add after mTLS).
func serve(t *testing.T, h http.Handler, peer *Peer) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if peer != nil {
		srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context { return WithPeer(ctx, *peer) }
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// done wraps h to signal each time a request's ServeHTTP returned, so a
// test knows its telemetry was recorded.
func done(h http.Handler) (http.Handler, <-chan struct{}) {
	ch := make(chan struct{}, 1000)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { ch <- struct{}{} }()
		h.ServeHTTP(w, r)
	}), ch
}

// attrMap renders span attributes as strings by key.
func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}
