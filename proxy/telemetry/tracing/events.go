package tracing

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.38.0"
	"go.opentelemetry.io/otel/trace"
)

// Weft's span attributes, besides OpenTelemetry's HTTP and RPC semantic
// conventions (docs/observability.md lists them all).
const (
	// WeftErrorKey is the x-weft-error reason of a response the sidecar,
	// or the peer sidecar it called, generated.
	WeftErrorKey = attribute.Key("weft.error")
	// PeerSPIFFEIDKey is the caller's verified SPIFFE ID, on server spans.
	PeerSPIFFEIDKey = attribute.Key("weft.peer.spiffe_id")
	// UpstreamAddressKey is the "ip:port" of the host a request (or an
	// attempt) was sent to: an upstream instance, or inbound the app.
	UpstreamAddressKey = attribute.Key("weft.upstream.address")
	// UpstreamInstanceKey is that host's Consul instance: the service ID
	// of the instance's sidecar, from EDS.
	UpstreamInstanceKey = attribute.Key("weft.upstream.instance_id")
	// AttemptKey is an event's attempt number, 1 for the first.
	AttemptKey = attribute.Key("weft.attempt")
	// TimeoutKey names the timeout that fired: route, per_try or idle.
	TimeoutKey = attribute.Key("weft.timeout")
	// EjectedHostsKey is the number of hosts outlier detection held out
	// of service.
	EjectedHostsKey = attribute.Key("weft.outlier.ejected_hosts")
)

// Span event names.
const (
	EventAttempt   = "upstream_attempt"
	EventTimeout   = "timeout"
	EventBreaker   = "breaker_open"
	EventEjections = "outlier_ejection"
	EventLocal     = "local_reply"
)

// Attempt is how one upstream attempt ended.
type Attempt struct {
	N        int    // 1 for the first attempt
	Host     string // "ip:port"
	Instance string // the host's Consul instance, if known
	// Status and GRPCStatus are the response's (0 and -1: none).
	Status, GRPCStatus int
	// Failure is why the attempt got no response (an x-weft-error
	// reason: connect_failure, upstream_timeout…), empty with one.
	Failure string
}

// failed reports an attempt a retry could follow: no response, a 5xx, or
// a gRPC server error.
func (a Attempt) failed() bool {
	return a.Failure != "" || a.Status >= 500 || a.GRPCStatus >= 0 && grpcServerError(a.GRPCStatus)
}

// AttemptEnded records an upstream_attempt event for a retry (an attempt
// after the first) or a failed attempt, with the host, its instance, and
// the response's status or error.type. A first attempt that succeeded
// adds nothing: the span's own attributes say it all.
func (s Span) AttemptEnded(a Attempt) {
	if !s.IsRecording() || a.N <= 1 && !a.failed() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, AttemptKey.Int(a.N), UpstreamAddressKey.String(a.Host))
	if a.Instance != "" {
		attrs = append(attrs, UpstreamInstanceKey.String(a.Instance))
	}
	if a.Status > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(a.Status))
	}
	if a.GRPCStatus >= 0 {
		attrs = append(attrs, semconv.RPCGRPCStatusCodeKey.Int(a.GRPCStatus))
	}
	if a.Failure != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(a.Failure))
	}
	s.s.AddEvent(EventAttempt, trace.WithAttributes(attrs...))
}

// TimedOut records a timeout event: which timeout (route, per_try, idle)
// ended attempt n or the request.
func (s Span) TimedOut(timeout string, n int) {
	if s.IsRecording() {
		s.s.AddEvent(EventTimeout, trace.WithAttributes(TimeoutKey.String(timeout), AttemptKey.Int(n)))
	}
}

// BreakerOpened records a breaker_open event: the request's failure on
// host opened its breaker, and outlier detection ejected it.
func (s Span) BreakerOpened(host, instance string) {
	if !s.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{UpstreamAddressKey.String(host)}
	if instance != "" {
		attrs = append(attrs, UpstreamInstanceKey.String(instance))
	}
	s.s.AddEvent(EventBreaker, trace.WithAttributes(attrs...))
}

// HostsEjected records an outlier_ejection event: outlier detection held
// n of the cluster's hosts out of service when attempt picked its host.
func (s Span) HostsEjected(n, attempt int) {
	if s.IsRecording() {
		s.s.AddEvent(EventEjections, trace.WithAttributes(EjectedHostsKey.Int(n), AttemptKey.Int(attempt)))
	}
}

// LocalReply records a local_reply event: the sidecar answered the
// request itself, with status and x-weft-error reason.
func (s Span) LocalReply(reason string, status int) {
	if s.IsRecording() {
		s.s.AddEvent(EventLocal, trace.WithAttributes(WeftErrorKey.String(reason), semconv.HTTPResponseStatusCode(status)))
	}
}
