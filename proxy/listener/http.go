package listener

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/rbac"
)

// httpHandler routes the requests of one bound listener with the route
// table of its current config.
type httpHandler struct {
	b *bound
}

// ServeHTTP runs the inbound edge (path normalization, mesh headers),
// header limits and HTTP RBAC, then routes and forwards the request.
func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := connOf(r)
	if r.Header.Get("Upgrade") != "" {
		// Upgraded connections are hijacked: http.Server.Shutdown does not
		// wait for them, the drain does; they leave the registry when done.
		h.b.conns.Add(1)
		defer h.b.conns.Done()
		defer h.forgetHijacked(c)
	}
	l := h.b.active.Load()
	path, ok := normalizePath(r)
	if !ok {
		writeProxyError(w, errInvalidPath, "")
		return
	}
	stripMeshHeaders(r.Header)
	if l.HTTP == nil || l.HTTP.Routes == nil {
		writeProxyError(w, errNoRoute, "")
		return
	}
	if headerCount(r.Header) > l.HTTP.MaxRequestHeaders {
		writeProxyError(w, errTooManyHeaders, "")
		return
	}
	if !h.authorized(l.HTTP, c, r, path) {
		writeProxyError(w, errRBACDenied, "")
		return
	}
	if c != nil && c.xfcc != nil {
		r.Header[xfccHeader] = c.xfcc
	}
	rt := l.HTTP.Routes.Match(r.Host, path)
	if rt == nil {
		writeProxyError(w, errNoRoute, "")
		return
	}
	cl := h.b.m.opts.Clusters.Get(rt.Cluster)
	if cl == nil {
		writeProxyError(w, errNoHealthyUpstream, rt.Cluster)
		return
	}
	res, err := cl.Pick()
	if err != nil {
		writeProxyError(w, errNoHealthyUpstream, rt.Cluster)
		return
	}
	if res.Done != nil {
		defer res.Done()
	}
	h.b.m.forward.serve(w, r, cl, res.Endpoint)
}

// authorized runs the HTTP RBAC filters on a request.
func (h *httpHandler) authorized(cfg *config.HTTP, c *connInfo, r *http.Request, path string) bool {
	if len(cfg.RBAC) == 0 {
		return true
	}
	var req rbac.Request
	if c != nil {
		req = c.who
	}
	req.HTTP, req.Path = r, path
	if ok := rbac.AllowedByAll(cfg.RBAC, &req); !ok {
		h.b.log.Debug("request denied by RBAC", "peer", req.Peer, "method", r.Method, "path", path)
		return false
	}
	return true
}

// forgetHijacked drops an upgraded connection from the registry once its
// tunnel has ended (the HTTP server no longer reports on it).
func (h *httpHandler) forgetHijacked(c *connInfo) {
	if c != nil && c.hijacked.Load() {
		h.b.registry.remove(c.conn)
	}
}

func headerCount(h http.Header) int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

// forwarder proxies requests to the endpoint chosen by the handler,
// through the cluster's pooled transport. One forwarder serves every
// listener; the target travels in the request context.
type forwarder struct {
	rp *httputil.ReverseProxy
}

type target struct {
	cluster  *cluster.Cluster
	endpoint *balancer.Endpoint
}

type targetKey struct{}

func newForwarder(log *slog.Logger) *forwarder {
	f := &forwarder{}
	f.rp = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    roundTripper{},
		BufferPool:   bufferPool{},
		ErrorHandler: handleUpstreamError,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return f
}

func (f *forwarder) serve(w http.ResponseWriter, r *http.Request, c *cluster.Cluster, e *balancer.Endpoint) {
	ctx := context.WithValue(r.Context(), targetKey{}, &target{cluster: c, endpoint: e})
	f.rp.ServeHTTP(w, r.WithContext(ctx))
}

func targetOf(r *http.Request) *target { return r.Context().Value(targetKey{}).(*target) }

// rewrite points the outbound request at the chosen endpoint, over mTLS
// for clusters with a TLS context. The Host header is kept; ReverseProxy
// removes hop-by-hop headers.
func rewrite(pr *httputil.ProxyRequest) {
	t := targetOf(pr.In)
	pr.Out.URL.Scheme = t.cluster.Scheme()
	pr.Out.URL.Host = t.endpoint.Address
}

type roundTripper struct{}

func (roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return targetOf(r).cluster.Transport().RoundTrip(r)
}

func handleUpstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the downstream client went away
	}
	kind := errUpstreamReset
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		kind = errConnectFailure
	}
	writeProxyError(w, kind, targetOf(r).cluster.Name())
}
