package tracing

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.38.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weft-mesh/weft/proxy/grpcwire"
)

// Tracer starts the spans of one listener configuration. It is safe for
// concurrent use, and a nil *Tracer is valid: it starts no spans.
//
// Obtain it from Providers.Acquire when a configuration is compiled and
// Release it when that configuration is replaced.
type Tracer struct {
	ps       *Providers
	p        *provider
	tracer   trace.Tracer
	released atomic.Bool
}

func newTracer(ps *Providers, p *provider) *Tracer {
	return &Tracer{ps: ps, p: p, tracer: p.tp.Tracer(instrumentationName)}
}

// Release gives the Tracer's provider back; the provider is flushed and
// shut down in the background once no Tracer holds it. Spans still in
// flight on a released Tracer are exported if their provider is still
// held by another Tracer, else dropped. Release is idempotent.
func (t *Tracer) Release() {
	if t == nil || t.released.Swap(true) {
		return
	}
	t.ps.release(t.p)
}

// ForceFlush exports the spans the Tracer's provider has queued. Tests use
// it to wait for spans without sleeping.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.p.tp.ForceFlush(ctx)
}

// Attrs describe a traced request beyond what its *http.Request says.
type Attrs struct {
	// PeerService is the service on the other side (peer.service): the
	// caller for a server span, the called service for a client span.
	PeerService string
	// ServerAddress is server.address; empty means the request's Host
	// without its port.
	ServerAddress string
	// PeerID is the verified SPIFFE ID of the caller, on a server span
	// (weft.peer.spiffe_id); empty when the connection has none.
	PeerID string
}

// StartServer starts the server span of a request a sidecar receives on
// its public (inbound) listener, as a child of the context in ctx (see
// Extract), or as the root of a new trace when ctx carries none. The
// returned context holds the span: Inject it into the request forwarded to
// the local app.
func (t *Tracer) StartServer(ctx context.Context, r *http.Request, a Attrs) (context.Context, Span) {
	return t.start(ctx, r, a, false)
}

// Span start options, built once.
var (
	serverKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// StartClient starts the client span of a request a sidecar sends for its
// app on an upstream (outbound) listener, as a child of the context in ctx
// (the app's, see Extract), or as the root of a new trace: a request that
// enters the mesh without context starts its trace here. Inject the
// returned context into the request sent upstream.
func (t *Tracer) StartClient(ctx context.Context, r *http.Request, a Attrs) (context.Context, Span) {
	return t.start(ctx, r, a, true)
}

func (t *Tracer) start(ctx context.Context, r *http.Request, a Attrs, client bool) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	kind := serverKind
	if client {
		kind = clientKind
	}
	service, method, isGRPC := grpcMethod(r)
	name := spanMethod(r.Method)
	if isGRPC {
		name = strings.TrimPrefix(r.URL.Path, "/")
	}
	ctx, s := t.tracer.Start(ctx, name, kind...)
	if s.IsRecording() {
		s.SetAttributes(requestAttrs(r, a, client, isGRPC, service, method)...)
	}
	return ctx, Span{s: s, method: name, grpc: isGRPC, client: client}
}

func requestAttrs(r *http.Request, a Attrs, client, isGRPC bool, service, method string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = appendMethod(attrs, r.Method)
	attrs = append(attrs,
		semconv.URLPath(r.URL.Path),
		semconv.ServerAddress(serverAddress(r, a)),
		semconv.NetworkProtocolVersion(protocolVersion(r)),
	)
	if port := portOf(r.Host); port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	if !client {
		attrs = appendPeer(attrs, r.RemoteAddr)
	}
	if a.PeerService != "" {
		attrs = append(attrs, semconv.PeerService(a.PeerService))
	}
	if a.PeerID != "" {
		attrs = append(attrs, PeerSPIFFEIDKey.String(a.PeerID))
	}
	if isGRPC {
		attrs = append(attrs, semconv.RPCSystemGRPC, semconv.RPCService(service), semconv.RPCMethod(method))
	}
	return attrs
}

// spanMethod is the method in a span's name: the method, or HTTP for one
// HTTP does not define, so that clients cannot make names up.
func spanMethod(m string) string {
	if knownMethod(m) {
		return m
	}
	return "HTTP"
}

// appendMethod appends http.request.method: _OTHER, with the original,
// for a method HTTP does not define.
func appendMethod(attrs []attribute.KeyValue, m string) []attribute.KeyValue {
	if knownMethod(m) {
		return append(attrs, semconv.HTTPRequestMethodKey.String(m))
	}
	return append(attrs, semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(m))
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// appendPeer appends network.peer.address and network.peer.port of a
// "host:port" address.
func appendPeer(attrs []attribute.KeyValue, addr string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return attrs
	}
	attrs = append(attrs, semconv.NetworkPeerAddress(host))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, semconv.NetworkPeerPort(p))
	}
	return attrs
}

// portOf is the port of a "host:port" address, 0 without one.
func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(port)
	return p
}

func serverAddress(r *http.Request, a Attrs) string {
	if a.ServerAddress != "" {
		return a.ServerAddress
	}
	if host, _, err := net.SplitHostPort(r.Host); err == nil {
		return host
	}
	return r.Host
}

func protocolVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	return "1.1"
}

// grpcMethod reports whether r is a gRPC call and splits its path
// "/package.Service/Method".
func grpcMethod(r *http.Request) (service, method string, ok bool) {
	if !grpcwire.IsRequest(r) {
		return "", "", false
	}
	service, method, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return service, method, true
}
