package listener

import (
	"net"
	"net/http"

	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/router"
	"github.com/weft-mesh/weft/proxy/telemetry"
)

// httpHandler routes the requests of one bound listener with the route
// table of one of its configurations.
type httpHandler struct {
	b *bound
	a *active
}

// ServeHTTP runs on every HTTP listener, inbound and outbound: the header
// limits (headerlimit.go), the edge (edge.go: h2c upgrades, path
// normalization, mesh headers), the HTTP RBAC and x-forwarded-client-cert
// (inbound_authz.go), then routes the request and hands it to the router.
func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := connOf(r)
	stripH2CUpgrade(r)
	closeAfterAmbiguousFraming(w, r, c)
	if r.Header.Get("Upgrade") != "" {
		// Upgraded connections are hijacked: http.Server.Shutdown does not
		// wait for them, the drain does; they leave the registry when done.
		h.b.conns.Add(1)
		defer h.b.conns.Done()
		defer h.forgetHijacked(c)
	}
	l := httpChain(h.a, c)
	if l.HTTP != nil {
		if reason := headerLimitExceeded(r, l.HTTP); reason != "" {
			localreply.Write(w, r, reason, "")
			return
		}
	}
	path, ok := normalizePath(r)
	if !ok {
		localreply.Write(w, r, localreply.InvalidPath, "")
		return
	}
	stripMeshHeaders(r.Header)
	if l.HTTP == nil || l.HTTP.Routes == nil {
		localreply.Write(w, r, localreply.NoRoute, "")
		return
	}
	if !h.authorized(l.HTTP, c, r, path) {
		localreply.Write(w, r, localreply.RBACDenied, "")
		return
	}
	setXFCC(r, c)
	rt := l.HTTP.Routes.Match(r, path)
	if rt == nil {
		localreply.Write(w, r, localreply.NoRoute, "")
		return
	}
	telemetry.SetRoute(r.Context(), rt.Name, rt.Template)
	h.b.m.router.Serve(w, r, router.Request{Route: rt, StreamIdleTimeout: l.HTTP.StreamIdleTimeout, SourceIP: sourceIP(r)})
}

// forgetHijacked drops an upgraded connection from the registry once its
// tunnel has ended (the HTTP server no longer reports on it).
func (h *httpHandler) forgetHijacked(c *connInfo) {
	if c != nil && c.hijacked.Load() {
		h.b.registry.remove(c.conn)
	}
}

// sourceIP is the downstream peer's IP address.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
