package tracing

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/weft-mesh/weft/internal/testnet"
)

// stuckExporter never finishes an export until released: a collector that
// accepted the connection and went silent.
type stuckExporter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (s *stuckExporter) ExportSpans(ctx context.Context, _ []sdktrace.ReadOnlySpan) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return ctx.Err()
}

func (s *stuckExporter) Shutdown(context.Context) error { return nil }

// refused returns an address where nothing listens.
func refused(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// endSpans starts and ends n server spans as n requests would.
func endSpans(tr *Tracer, n int) {
	r := newRequest(http.MethodGet, "http://api/items", nil)
	for range n {
		ctx, span := tr.StartServer(Extract(r.Context(), r.Header), r, Attrs{PeerService: "web"})
		Inject(ctx, http.Header{})
		span.End(Result{Status: 200})
	}
}

// within fails the test if fn does not return within d: a blocked request
// path shows up as a failure, not as a hung test.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}

func TestAStuckExportNeverBlocksSpans(t *testing.T) {
	stuck := &stuckExporter{release: make(chan struct{}), entered: make(chan struct{})}
	ps := NewProviders(Options{
		QueueSize:       16,
		BatchTimeout:    time.Millisecond,
		ExportTimeout:   time.Hour,
		ShutdownTimeout: 50 * time.Millisecond,
		NewExporter:     func(context.Context, Endpoint) (sdktrace.SpanExporter, error) { return stuck, nil },
		Logger:          testLogger(t),
	})
	tr, err := ps.Acquire(&Config{Collector: Collector{Address: "collector:4317"}, SamplingRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	endSpans(tr, 16)
	<-stuck.entered // the processor is now blocked in an export
	within(t, 30*time.Second, "ending 100 × the queue size of spans", func() { endSpans(tr, 1600) })

	tr.Release()
	within(t, 30*time.Second, "Close with an export stuck", func() {
		if err := ps.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	close(stuck.release)
}

func TestCollectorDownOrBlackHoled(t *testing.T) {
	tests := []struct {
		name string
		addr func(testing.TB) string
	}{
		{"connection refused", refused},
		{"black hole", testnet.BlackHole},
	}
	for _, tt := range tests {
		for _, proto := range []Protocol{GRPC, HTTP} {
			t.Run(tt.name+"/"+proto.String(), func(t *testing.T) {
				ps := NewProviders(Options{
					QueueSize:       64,
					BatchTimeout:    time.Millisecond,
					ShutdownTimeout: 200 * time.Millisecond,
					Logger:          testLogger(t),
				})
				tr, err := ps.Acquire(&Config{Collector: Collector{Protocol: proto, Address: tt.addr(t), Path: DefaultHTTPPath, Timeout: 300 * time.Millisecond}, SamplingRatio: 1})
				if err != nil {
					t.Fatal(err)
				}
				within(t, 30*time.Second, "ending spans", func() { endSpans(tr, 5000) })
				tr.Release()
				within(t, 30*time.Second, "Close", func() { ps.Close(context.Background()) })
			})
		}
	}
}

// BenchmarkSpan is the cost of one traced request's span (extract, start,
// inject, end) with a healthy collector and with a black-holed one: the
// two must be alike, since export never runs on the request path.
func BenchmarkSpan(b *testing.B) {
	for _, bc := range []struct {
		name string
		exp  func(b *testing.B) func(context.Context, Endpoint) (sdktrace.SpanExporter, error)
	}{
		{"collector=healthy", func(*testing.B) func(context.Context, Endpoint) (sdktrace.SpanExporter, error) {
			return func(_ context.Context, e Endpoint) (sdktrace.SpanExporter, error) { return discard{}, nil }
		}},
		{"collector=blackhole", func(b *testing.B) func(context.Context, Endpoint) (sdktrace.SpanExporter, error) {
			return newOTLPExporter
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ps := NewProviders(Options{NewExporter: bc.exp(b), ShutdownTimeout: 100 * time.Millisecond, ExportTimeout: time.Second})
			defer ps.Close(context.Background())
			tr, err := ps.Acquire(&Config{Collector: Collector{Address: testnet.BlackHole(b)}, SamplingRatio: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Release()
			r := newRequest(http.MethodGet, "http://api/items", http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}})
			h := http.Header{}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, span := tr.StartServer(Extract(r.Context(), r.Header), r, Attrs{PeerService: "web"})
					Inject(ctx, h.Clone())
					span.End(Result{Status: 200})
				}
			})
		})
	}
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
