package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Export retries stay well inside the export timeout, so a down collector
// holds a batch for seconds, not the SDK's default minute.
const (
	retryInitial = 250 * time.Millisecond
	retryMax     = 2 * time.Second
)

// newOTLPExporter exports over plaintext OTLP/gRPC or OTLP/HTTP (the
// collector's cluster carries no transport socket). Neither connects here:
// gRPC connects lazily, HTTP per export.
func newOTLPExporter(ctx context.Context, e Endpoint) (sdktrace.SpanExporter, error) {
	retryElapsed := max(e.Timeout/2, retryMax)
	switch e.Protocol {
	case GRPC:
		return otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(e.Address),
			otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithTimeout(e.Timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: retryInitial, MaxInterval: retryMax, MaxElapsedTime: retryElapsed}),
		)
	case HTTP:
		return otlptracehttp.New(ctx,
			otlptracehttp.WithEndpoint(e.Address),
			otlptracehttp.WithURLPath(e.Path),
			otlptracehttp.WithInsecure(),
			otlptracehttp.WithTimeout(e.Timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: retryInitial, MaxInterval: retryMax, MaxElapsedTime: retryElapsed}),
		)
	}
	return nil, fmt.Errorf("unknown protocol %d", e.Protocol)
}

// warnEvery spaces the warnings about a failing collector.
const warnEvery = time.Minute

// quietExporter logs export failures itself, at most one warning per
// minute, and hides them from the batch span processor, which would
// otherwise report each one to OpenTelemetry's global error handler
// (standard error, unthrottled). The spans of a failed export are lost,
// as they would be anyway.
type quietExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger

	mu       sync.Mutex // guards the fields below; exports are serial anyway
	failing  bool
	lost     int
	lastWarn time.Time
}

func newQuietExporter(e sdktrace.SpanExporter, log *slog.Logger) *quietExporter {
	return &quietExporter{SpanExporter: e, log: log}
}

func (q *quietExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := q.SpanExporter.ExportSpans(ctx, spans)
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case err != nil:
		q.failing = true
		q.lost += len(spans)
		if now := time.Now(); now.Sub(q.lastWarn) >= warnEvery {
			q.lastWarn = now
			q.log.Warn("span export failed; spans dropped", "spans_lost", q.lost, "error", err)
		}
	case q.failing:
		q.failing = false
		q.log.Info("span export recovered", "spans_lost", q.lost)
	}
	return nil
}
