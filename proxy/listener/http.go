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
)

// httpHandler routes the requests of one bound listener with the route
// table of its current config.
type httpHandler struct {
	b *bound
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" {
		// Upgraded connections are hijacked: http.Server.Shutdown does not
		// wait for them, the drain does.
		h.b.conns.Add(1)
		defer h.b.conns.Done()
	}
	l := h.b.active.Load()
	if l.HTTP == nil || l.HTTP.Routes == nil {
		writeProxyError(w, errNoRoute, "")
		return
	}
	if headerCount(r.Header) > l.HTTP.MaxRequestHeaders {
		writeProxyError(w, errTooManyHeaders, "")
		return
	}
	rt := l.HTTP.Routes.Match(r.Host, r.URL.EscapedPath())
	if rt == nil {
		writeProxyError(w, errNoRoute, "")
		return
	}
	c := h.b.m.opts.Clusters.Get(rt.Cluster)
	if c == nil {
		writeProxyError(w, errNoHealthyUpstream, rt.Cluster)
		return
	}
	res, err := c.Pick()
	if err != nil {
		writeProxyError(w, errNoHealthyUpstream, rt.Cluster)
		return
	}
	if res.Done != nil {
		defer res.Done()
	}
	h.b.m.forward.serve(w, r, c, res.Endpoint)
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

// rewrite points the outbound request at the chosen endpoint. The Host
// header is kept; ReverseProxy removes hop-by-hop headers.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = targetOf(pr.In).endpoint.Address
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
