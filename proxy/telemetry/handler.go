package telemetry

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/weft-mesh/weft/proxy/grpcwire"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/tap"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// Handler is the telemetry middleware of one HTTP listener configuration.
// Build it with Telemetry.Wrap when the configuration is compiled; it is
// immutable and safe for concurrent use.
type Handler struct {
	next     http.Handler
	tel      *Telemetry
	l        Listener
	defaults atomic.Pointer[resolved] // for requests without a Peer of their own
}

// resolved are the metric handles of a handler, for the own service they
// were resolved with.
type resolved struct {
	h      *Handler
	self   string
	routes routeSet
}

// routeSet holds a route's metric handles by protocol index.
type routeSet [3]*metrics.Route

const (
	protoHTTP = iota
	protoHTTP2
	protoGRPC
)

var protocols = [...]string{protoHTTP: metrics.ProtocolHTTP, protoHTTP2: metrics.ProtocolHTTP2, protoGRPC: metrics.ProtocolGRPC}

// Wrap returns next with telemetry: for each request it continues or
// starts the trace (tracing.Extract, a server span inbound or a client
// span outbound, tracing.Inject into the request's headers, so the request
// next forwards carries the new span), then, when next returns, counts the
// request and observes its duration, ends the span with the response's
// status, grpc-status and x-weft-error, the last upstream and the
// attempts (a local_reply event when the sidecar answered itself), and
// logs one access-log line.
//
// next sees a request whose context carries the telemetry state (for
// SetRoute and Transport) and a ResponseWriter that supports Flush, Hijack
// and http.ResponseController.
func (t *Telemetry) Wrap(next http.Handler, l Listener) *Handler {
	h := &Handler{next: next, tel: t, l: l}
	self, _ := t.self(&h.l)
	h.defaults.Store(h.resolveFor(self, nil))
	return h
}

// parties returns the source and destination of a request on a
// connection with peer p (nil when unknown).
func (h *Handler) parties(p *peerState) (src, srcID, dst, dstID string) {
	self, selfID := h.tel.self(&h.l)
	return h.partiesFor(self, selfID, p)
}

func (h *Handler) partiesFor(self, selfID string, p *peerState) (src, srcID, dst, dstID string) {
	if h.l.Direction == metrics.Outbound {
		return self, selfID, h.l.Peer, h.l.PeerID
	}
	src, srcID = h.l.Peer, h.l.PeerID
	if p != nil && p.Service != "" {
		src, srcID = p.Service, p.ID
	}
	if src == "" {
		src = unknownPeer
	}
	return src, srcID, self, selfID
}

func (h *Handler) resolveFor(self string, p *peerState) *resolved {
	src, _, dst, _ := h.partiesFor(self, "", p)
	return &resolved{h: h, self: self, routes: h.resolve(src, dst)}
}

func (h *Handler) resolve(src, dst string) routeSet {
	var rs routeSet
	m := h.tel.metrics()
	if m == nil {
		return rs
	}
	for i, p := range protocols {
		if h.l.Protocol != "" {
			p = h.l.Protocol
		}
		rs[i] = m.Route(h.l.Direction, src, dst, p)
	}
	return rs
}

// routesFor returns the handles of requests on a connection of peer p,
// resolved once per connection and configuration (and own service).
func (h *Handler) routesFor(p *peerState) routeSet {
	self, _ := h.tel.self(&h.l)
	if p == nil || p.Service == "" || h.l.Direction == metrics.Outbound {
		if d := h.defaults.Load(); d.self == self {
			return d.routes
		}
		d := h.resolveFor(self, nil)
		h.defaults.Store(d)
		return d.routes
	}
	if c := p.cache.Load(); c != nil && c.h == h && c.self == self {
		return c.routes
	}
	c := h.resolveFor(self, p)
	p.cache.Store(c)
	return c.routes
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &request{start: time.Now(), peer: peerFrom(r.Context())}
	st.writer.w = w
	ctx := tracing.Extract(r.Context(), r.Header)
	ctx, st.span = h.startSpan(ctx, r, st.peer)
	tracing.Inject(ctx, r.Header)
	st.Context = ctx
	r2 := r.WithContext(st)
	if r.Body != nil && r.Body != http.NoBody {
		st.body.rc = r.Body
		r2.Body = &st.body
	}
	defer func() {
		p := recover()
		h.finish(st, r, p != nil)
		if p != nil {
			panic(p) // http.ErrAbortHandler from the router, or a bug: the server handles it
		}
	}()
	h.next.ServeHTTP(&st.writer, r2)
}

func (h *Handler) startSpan(ctx context.Context, r *http.Request, p *peerState) (context.Context, tracing.Span) {
	if h.l.Tracer == nil {
		return ctx, tracing.Span{}
	}
	src, srcID, dst, _ := h.parties(p)
	if h.l.Direction == metrics.Outbound {
		return h.l.Tracer.StartClient(ctx, r, tracing.Attrs{PeerService: dst, ServerAddress: dst})
	}
	return h.l.Tracer.StartServer(ctx, r, tracing.Attrs{PeerService: src, PeerID: srcID})
}

// finish records a request once its handler returned (or panicked).
func (h *Handler) finish(st *request, r *http.Request, panicked bool) {
	dur := time.Since(st.start)
	status := st.writer.status
	if !st.writer.wrote {
		switch {
		case st.writer.hijacked:
			status = http.StatusSwitchingProtocols
		case panicked || r.Context().Err() != nil:
			status = 0 // nothing reached the downstream
		default:
			status = http.StatusOK // what the server sends for a handler that wrote nothing
		}
	}
	proto := protocolOf(r)
	var grpc string
	if proto == protoGRPC {
		grpc = grpcStatus(st.writer.w.Header())
	}
	route, host, upstreamReason := st.upstream()
	reason := st.writer.reason
	// The reason counted and traced: the sidecar's own, or one a peer
	// sidecar answered with (an upstream's intention denying this caller
	// is rbac_denied here too, as the caller sees it; the direction label
	// tells the two apart). A value the upstream made up is logged only.
	counted := reason
	if reason == upstreamReason {
		if _, known := localreply.Known(reason); !known {
			counted = ""
		}
	}
	h.routesFor(st.peer)[proto].Observe(status, grpc, counted, dur)
	if h.l.Gateway != "" {
		st.target.Gateway(h.l.Gateway).Request(status, st.body.n.Load(), st.writer.bytes)
	}
	if reason != "" && reason != upstreamReason {
		st.span.LocalReply(reason, status) // the sidecar answered itself
	}
	st.span.End(tracing.Result{Status: status, GRPCStatus: grpc, Reason: counted,
		UpstreamHost: host, UpstreamInstance: st.upstreamInstance, Attempts: st.attempts})
	if al := h.tel.accessLog(); al != nil {
		if route == "" {
			route = h.l.Route
		}
		h.log(al, st, r, accessFields{status, grpc, reason, route, host, proto, dur})
	}
	if hub := h.tel.tap(); hub.Active() {
		h.publish(hub, st, r, accessFields{status, grpc, reason, route, host, proto, dur})
	}
}

// publish hands the request to the taps running (only while one runs).
func (h *Handler) publish(hub *tap.Hub, st *request, r *http.Request, f accessFields) {
	src, srcID, dst, _ := h.parties(st.peer)
	e := tap.Event{Start: st.start, Direction: string(h.l.Direction), Source: src, SourceID: srcID, Destination: dst,
		Method: r.Method, Path: r.URL.Path, Status: f.status, GRPCStatus: f.grpc, Duration: f.dur, WeftError: f.reason, Upstream: f.host}
	if sc := st.span.SpanContext(); sc.IsValid() {
		e.TraceID = sc.TraceID().String()
	} else if sc := trace.SpanContextFromContext(st.Context); sc.IsValid() {
		e.TraceID = sc.TraceID().String()
	}
	hub.Publish(&e)
}

type accessFields struct {
	status                    int
	grpc, reason, route, host string
	proto                     int
	dur                       time.Duration
}

func (h *Handler) log(al *accesslog.Logger, st *request, r *http.Request, f accessFields) {
	src, srcID, dst, dstID := h.parties(st.peer)
	e := accesslog.Entry{
		Time:          st.start,
		Direction:     string(h.l.Direction),
		Source:        src,
		SourceID:      srcID,
		Destination:   dst,
		DestinationID: accesslog.Identity{ID: dstID},
		Route:         f.route,
		UpstreamHost:  f.host,
		Method:        r.Method,
		Path:          r.URL.Path,
		Protocol:      h.protocolLabel(f.proto),
		Status:        f.status,
		GRPCStatus:    f.grpc,
		DurationMS:    float64(f.dur.Microseconds()) / 1000,
		BytesIn:       st.body.n.Load(),
		BytesOut:      st.writer.bytes,
		WeftError:     f.reason,
	}
	if h.l.Direction == metrics.Outbound && dstID == "" {
		e.DestinationID.Cert = st.upstreamCert
	}
	// The sidecar's span; without one (no tracer), the trace the request
	// came with, but not its caller's span ID.
	if sc := st.span.SpanContext(); sc.IsValid() {
		e.TraceID, e.SpanID = accesslog.TraceID(sc.TraceID()), accesslog.SpanID(sc.SpanID())
	} else if sc := trace.SpanContextFromContext(st.Context); sc.IsValid() {
		e.TraceID = accesslog.TraceID(sc.TraceID())
	}
	al.Log(&e)
}

func (h *Handler) protocolLabel(i int) string {
	if h.l.Protocol != "" {
		return h.l.Protocol
	}
	return protocols[i]
}

// protocolOf classifies a request: gRPC, else HTTP/2, else HTTP/1.x.
func protocolOf(r *http.Request) int {
	switch {
	case grpcwire.IsRequest(r):
		return protoGRPC
	case r.ProtoMajor == 2:
		return protoHTTP2
	}
	return protoHTTP
}
