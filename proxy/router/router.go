// Package router is weft-proxy's HTTP router filter: it forwards a
// request the listener has routed (proxy/route) to a host of the chosen
// cluster, and applies the route's action on the way — weighted cluster
// choice, header changes, path and host rewrites, the request hash for
// consistent-hash policies, the route, per-try, idle and gRPC timeouts,
// retries with back-off within the cluster's retry budget, the cluster's
// max_requests limit, and the outcome of every attempt to the host's
// outlier detection. Requests it cannot forward get a local reply
// (proxy/localreply) that says why; a route's direct response is
// answered without forwarding.
//
// Forwarding (forward.go) builds the upstream header once, without
// hop-by-hop headers, and runs the attempt loop, which picks a host per
// attempt and decides on retries before any byte of a response reaches
// the client; the response's headers are copied once, its body through
// a pooled buffer (streams flushed after every write), then its
// trailers. Upgrades (101) are hijacked and piped both ways.
package router

import (
	"context"
	"log/slog"
	"net/http"
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
	// Observe is told what happens to a request on its way upstream
	// (events.go), on the request's goroutine, as it happens; ctx is the
	// downstream request's context. e's Host is valid after the call,
	// e itself is not retained by the router.
	Observe func(ctx context.Context, e Event)
}

// Router forwards routed requests. It is safe for concurrent use.
type Router struct {
	clusters Clusters
	hooks    Hooks
	log      *slog.Logger
}

// New returns a Router over clusters.
func New(clusters Clusters, hooks Hooks, log *slog.Logger) *Router {
	return &Router{clusters: clusters, hooks: hooks, log: log}
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
// local reply, to w; a route with a direct response answers r itself
// (direct.go). It returns when the exchange is over.
func (rt *Router) Serve(w http.ResponseWriter, r *http.Request, req Request) {
	if req.Route.Action.Direct != nil {
		serveDirect(w, r, req.Route)
		return
	}
	ex := newExchange(rt, r, req)
	defer ex.finish()
	if ex.cluster == nil {
		ex.reply(w, r, localreply.NoHealthyUpstream)
		return
	}
	// An aggregate cluster's request is counted in the child each
	// attempt goes to (exchange.pick).
	if !ex.cluster.IsAggregate() && !ex.countRequest(ex.cluster) {
		ex.reply(w, r, localreply.Overflow)
		return
	}
	defer ex.releaseRequest()
	ex.prepare(r)
	ex.forward(w, r)
}
