package tracing

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.38.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weft-mesh/weft/proxy/localreply"
)

// Span is a started span. The zero Span (from a nil Tracer) does nothing.
// A Span is used by one goroutine, the request's.
type Span struct {
	s      trace.Span
	method string // the name's method: the request's, or HTTP
	grpc   bool
	client bool
}

// SpanContext returns the span's trace and span IDs; invalid for the zero
// Span.
func (s Span) SpanContext() trace.SpanContext {
	if s.s == nil {
		return trace.SpanContext{}
	}
	return s.s.SpanContext()
}

// IsRecording reports whether the span is sampled and records attributes.
func (s Span) IsRecording() bool { return s.s != nil && s.s.IsRecording() }

// AddEvent records an event on a recording span.
func (s Span) AddEvent(name string, attrs ...attribute.KeyValue) {
	if s.IsRecording() {
		s.s.AddEvent(name, trace.WithAttributes(attrs...))
	}
}

// SetRoute records the route the request matched, by its path template
// (route.Route.Template): http.route, and the span's name "METHOD
// template". gRPC spans keep their name, the RPC's method.
func (s Span) SetRoute(template string) {
	if template == "" || !s.IsRecording() {
		return
	}
	s.s.SetAttributes(semconv.HTTPRoute(template))
	if !s.grpc {
		s.s.SetName(s.method + " " + template)
	}
}

// Result is how a traced request ended.
type Result struct {
	// Status is the HTTP status sent downstream; 0 when no response was
	// sent (the downstream went away, or the handler panicked).
	Status int
	// GRPCStatus is the grpc-status of a gRPC response ("0" to "16"),
	// empty when there is none.
	GRPCStatus string
	// Reason is the x-weft-error reason, empty for responses the sidecar
	// did not generate.
	Reason string
	// UpstreamHost is the address of the last upstream attempt, if any.
	UpstreamHost string
	// UpstreamInstance is the Consul instance of the last attempt's host,
	// if the control plane named it.
	UpstreamInstance string
	// Attempts is the number of upstream attempts: 2 and more means the
	// request was retried.
	Attempts int
}

// End records res on the span and ends it. The span's status is Error for
// a 5xx or missing response, any x-weft-error reason but a direct
// response's (the route's own answer, a failure only as a 5xx), and the
// gRPC codes that are server errors (UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
func (s Span) End(res Result) {
	if s.s == nil {
		return
	}
	if s.s.IsRecording() {
		s.record(res)
	}
	s.s.End()
}

func (s Span) record(res Result) {
	attrs := make([]attribute.KeyValue, 0, 10)
	if res.Status > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(res.Status))
	}
	grpcCode, hasGRPC := -1, false
	if s.grpc && res.GRPCStatus != "" {
		if c, err := strconv.Atoi(res.GRPCStatus); err == nil {
			grpcCode, hasGRPC = c, true
			attrs = append(attrs, semconv.RPCGRPCStatusCodeKey.Int(c))
		}
	}
	attrs = s.appendUpstream(attrs, res)
	if res.Attempts > 1 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(res.Attempts-1))
	}
	errType, desc := classify(res, grpcCode, hasGRPC)
	if res.Reason != "" {
		attrs = append(attrs, WeftErrorKey.String(res.Reason))
	}
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		s.s.SetStatus(codes.Error, desc)
	}
	s.s.SetAttributes(attrs...)
}

// appendUpstream appends the upstream the request was last sent to: its
// address and instance, and on a client span the network peer.
func (s Span) appendUpstream(attrs []attribute.KeyValue, res Result) []attribute.KeyValue {
	if res.UpstreamHost == "" {
		return attrs
	}
	attrs = append(attrs, UpstreamAddressKey.String(res.UpstreamHost))
	if res.UpstreamInstance != "" {
		attrs = append(attrs, UpstreamInstanceKey.String(res.UpstreamInstance))
	}
	if s.client {
		attrs = appendPeer(attrs, res.UpstreamHost)
	}
	return attrs
}

// classify returns error.type and the status description of a failed
// request, or "" for a success.
func classify(res Result, grpcCode int, hasGRPC bool) (errType, desc string) {
	switch {
	case res.Reason != "" && localreply.Reason(res.Reason).Failure(res.Status):
		return res.Reason, res.Reason
	case res.Status == 0:
		return "no_response", "no response sent"
	case res.Status >= 500:
		s := strconv.Itoa(res.Status)
		return s, s + " " + http.StatusText(res.Status)
	case hasGRPC && grpcServerError(grpcCode):
		s := strconv.Itoa(grpcCode)
		return s, "grpc-status " + s
	}
	return "", ""
}

// grpcServerError reports the gRPC codes that mark a server span as failed
// in OpenTelemetry's semantic conventions.
func grpcServerError(code int) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}
