package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Canonical names of the propagation headers.
const (
	headerTraceparent = "Traceparent"
	headerB3          = "B3"
	headerB3TraceID   = "X-B3-Traceid"
)

// b3Headers are every B3 header, which Inject replaces together.
var b3Headers = []string{headerB3, headerB3TraceID, "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags"}

var (
	w3c      = propagation.TraceContext{}
	b3Single = b3.New(b3.WithInjectEncoding(b3.B3SingleHeader))
	b3Multi  = b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader))
	b3Both   = b3.New(b3.WithInjectEncoding(b3.B3SingleHeader | b3.B3MultipleHeader))
)

// b3Key marks a context extracted from B3 headers; its value is the
// propagator that writes the same encoding.
type b3Key struct{}

// Extract returns ctx with the remote trace context that h carries: W3C
// traceparent (and tracestate) when valid, else B3, from the single b3
// header or the X-B3-* headers. Without either, ctx is returned as is and
// a span started from it begins a new trace.
//
// A request with B3 headers remembers their encodings (single, multiple
// or both, as the request had them), so that Inject rewrites them too: a
// caller that speaks only B3 keeps its trace, and a request that carries
// both never leaves with B3 headers naming an older span.
func Extract(ctx context.Context, h http.Header) context.Context {
	carrier := headerCarrier(h)
	enc := b3Encoding(h)
	out := ctx
	if _, ok := h[headerTraceparent]; ok {
		if x := w3c.Extract(ctx, carrier); remote(x) {
			out = x
		}
	}
	if out == ctx && enc != nil {
		if x := b3Single.Extract(ctx, carrier); remote(x) {
			out = x
		}
	}
	if out == ctx || enc == nil {
		return out
	}
	return context.WithValue(out, b3Key{}, enc)
}

// b3Encoding returns the propagator that writes B3 as h has it, nil when
// h has no B3 headers.
func b3Encoding(h http.Header) propagation.TextMapPropagator {
	_, single := h[headerB3]
	_, multi := h[headerB3TraceID]
	switch {
	case single && multi:
		return b3Both
	case single:
		return b3Single
	case multi:
		return b3Multi
	}
	return nil
}

func remote(ctx context.Context) bool {
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && sc.IsRemote()
}

// Inject writes the span context of ctx into h as W3C traceparent and
// tracestate, replacing what h held, and as B3 in the incoming encoding
// when ctx was extracted from B3. It writes nothing for a context without
// a valid span context.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	carrier := headerCarrier(h)
	w3c.Inject(ctx, carrier)
	if enc, ok := ctx.Value(b3Key{}).(propagation.TextMapPropagator); ok {
		for _, k := range b3Headers {
			delete(h, k)
		}
		enc.Inject(ctx, carrier)
	}
}

// headerCarrier is propagation.HeaderCarrier without its allocations on
// the request path: the propagators' lower-case keys map to canonical
// ones without building a string, and Set reuses a single-value slice.
type headerCarrier http.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

var canonicalKeys = map[string]string{
	"traceparent": headerTraceparent, "tracestate": "Tracestate",
	"b3": headerB3, "x-b3-traceid": headerB3TraceID, "x-b3-spanid": "X-B3-Spanid",
	"x-b3-parentspanid": "X-B3-Parentspanid", "x-b3-sampled": "X-B3-Sampled", "x-b3-flags": "X-B3-Flags",
}

func canonicalKey(key string) string {
	if k, ok := canonicalKeys[key]; ok {
		return k
	}
	return http.CanonicalHeaderKey(key)
}

func (c headerCarrier) Get(key string) string {
	if v := c[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	k := canonicalKey(key)
	if v := c[k]; len(v) == 1 {
		v[0] = value
		return
	}
	c[k] = []string{value}
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
