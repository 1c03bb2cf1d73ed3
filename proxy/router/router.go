// Package router is weft-proxy's HTTP router filter: it forwards a
// request the listener has routed (proxy/route) to a host of the chosen
// cluster, and applies the route's action on the way — weighted cluster
// choice, header changes, path and host rewrites, the request hash for
// consistent-hash policies, the route, per-try, idle and gRPC timeouts,
// retries with back-off within the cluster's retry budget, the cluster's
// max_requests limit, and the outcome of every attempt to the host's
// outlier detection. Requests it cannot forward get a local reply
// (proxy/localreply) that says why.
//
// Forwarding runs through one httputil.ReverseProxy (hop-by-hop headers,
// trailers, 1xx, upgrades, immediate flushing of streams); its
// Transport is the attempt loop, which picks a host per attempt and
// decides on retries before any byte of a response reaches the client.
package router

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/route"
)

// Clusters resolves cluster names on the request path. Get must be safe
// for concurrent use, must not block, and returns nil for unknown names.
type Clusters interface {
	Get(name string) *cluster.Cluster
}

// Hooks let other parts of the proxy (telemetry) observe forwarding.
// Every field is optional; hooks are called on the request path and must
// not block.
type Hooks struct {
	// Attempt wraps the transport of each upstream attempt; the request
	// it sees carries the attempt's host in URL.Host.
	Attempt func(http.RoundTripper) http.RoundTripper
	// Retry is called before each retry of a request to cluster.
	Retry func(cluster string)
}

// Router forwards routed requests. It is safe for concurrent use.
type Router struct {
	clusters Clusters
	hooks    Hooks
	rp       *httputil.ReverseProxy
	log      *slog.Logger
}

// New returns a Router over clusters.
func New(clusters Clusters, hooks Hooks, log *slog.Logger) *Router {
	rt := &Router{clusters: clusters, hooks: hooks, log: log}
	rt.rp = &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {}, // the attempt loop sets the target
		Transport: transport{},
		// Streams — responses without a Content-Length (gRPC, chunked)
		// and text/event-stream — are flushed after every write, which
		// ReverseProxy does by itself. A response of known length is
		// written as the handler returns or the buffer fills: one write
		// for its headers and a small body. (-1 here would also flush the
		// headers apart, from a timer goroutine: one more write syscall,
		// goroutine and lock per request.)
		FlushInterval:  0,
		BufferPool:     bufferPool{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   rt.handleError,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return rt
}

// Request is a request the listener has routed.
type Request struct {
	Route *route.Route
	// StreamIdleTimeout is the listener's stream_idle_timeout (0: none);
	// the route's idle_timeout overrides it.
	StreamIdleTimeout time.Duration
	// SourceIP is the downstream peer's IP address, for hash policies.
	SourceIP string
}

// Serve forwards r as req's route says and writes the response, or a
// local reply, to w. It returns when the exchange is over.
func (rt *Router) Serve(w http.ResponseWriter, r *http.Request, req Request) {
	ex := newExchange(rt, r, req)
	defer ex.finish()
	if ex.cluster == nil {
		ex.reply(w, r, localreply.NoHealthyUpstream)
		return
	}
	if !ex.cluster.AcquireRequest() {
		ex.reply(w, r, localreply.Overflow)
		return
	}
	defer ex.cluster.ReleaseRequest()
	ex.prepare(r)
	rt.rp.ServeHTTP(w, r.WithContext(context.WithValue(ex.ctx, exchangeKey{}, ex)))
}

type exchangeKey struct{}

func exchangeOf(r *http.Request) *exchange {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	return ex
}

// transport is the ReverseProxy's RoundTripper: the attempt loop of the
// request's exchange.
type transport struct{}

func (transport) RoundTrip(out *http.Request) (*http.Response, error) {
	return exchangeOf(out).roundTrip(out)
}

// modifyResponse applies the route's response header changes.
func modifyResponse(resp *http.Response) error {
	exchangeOf(resp.Request).decorate(resp.Header)
	return nil
}

// handleError answers a request no attempt could complete.
func (rt *Router) handleError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeOf(r)
	if ex.downstreamGone() {
		return
	}
	var le *localError
	reason := localreply.UpstreamReset
	if errors.As(err, &le) {
		reason = le.reason
	}
	rt.log.Debug("upstream request failed", "cluster", ex.clusterName, "reason", reason, "attempts", ex.attempts, "error", err)
	ex.reply(w, r, reason)
}
