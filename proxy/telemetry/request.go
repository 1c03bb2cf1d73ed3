package telemetry

import (
	"context"
	"crypto/x509"
	"io"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/internal/ready"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// request is the telemetry state of one request. It is also the request's
// context (it embeds the parent and answers for stateKey), which saves an
// allocation per request.
type request struct {
	context.Context
	start  time.Time
	peer   *peerState
	span   tracing.Span
	writer recorder
	body   countingBody

	// Set by SetRoute, Transport and Observe. The handler, the router and
	// its attempts' RoundTrip all run on the request's goroutine, and
	// finish reads them after the wrapped handler returned: no lock.
	route            string
	upstreamCert     *x509.Certificate // the last attempt's verified peer, if TLS
	upstreamHost     string
	upstreamInstance string // the last attempt's host's, on a recording span only
	upstreamReason   string
	attempts         int
	// target is the gateway metrics of the last attempt's cluster's
	// target (Observe); nil before an attempt or without one.
	target *metrics.Target
}

type stateKey struct{}

func (r *request) Value(key any) any {
	if key == any(stateKey{}) {
		return r
	}
	return r.Context.Value(key)
}

func stateFrom(ctx context.Context) *request {
	st, _ := ctx.Value(stateKey{}).(*request)
	return st
}

// SetRoute names the route a request matched: name (if any) for its
// access-log line, template (route.Route.Template) for its span, as
// http.route and in the span's name. The listener calls it from the
// wrapped handler once routing is done. It does nothing for a context
// without telemetry.
func SetRoute(ctx context.Context, name, template string) {
	if st := stateFrom(ctx); st != nil {
		if name != "" {
			st.route = name
		}
		st.span.SetRoute(template)
	}
}

// attempt records the start of an upstream attempt to host.
func (r *request) attempt(host string) {
	r.attempts++
	r.upstreamHost, r.upstreamInstance, r.upstreamReason, r.upstreamCert = host, "", "", nil
}

// answered records the x-weft-error of an upstream response.
func (r *request) answered(reason string) { r.upstreamReason = reason }

func (r *request) upstream() (route, host, reason string) {
	return r.route, r.upstreamHost, r.upstreamReason
}

// countingBody counts the request body bytes read. Reads may come from the
// transport's goroutine, hence the atomic.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// Ready reports what the body has buffered (ready.Reporter), so that the
// transport can send a request that arrived whole in one write.
func (b *countingBody) Ready() (int, bool) { return ready.Of(b.rc) }

// peerState is a downstream connection's identity, with the metric
// handles last resolved for it, so requests on a connection resolve them
// once.
type peerState struct {
	Peer
	cache atomic.Pointer[resolved]
}

type peerKey struct{}

// WithPeer returns ctx carrying the verified identity of a downstream
// connection: the source of the requests on it. Call it from the
// http.Server's ConnContext, once per connection, after the TLS handshake.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, &peerState{Peer: p})
}

func peerFrom(ctx context.Context) *peerState {
	p, _ := ctx.Value(peerKey{}).(*peerState)
	return p
}
