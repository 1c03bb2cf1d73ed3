package listener

// Inbound authorization: every decision on whether a downstream
// connection or request may go on, and what the app is told of the
// verified peer. The RBAC filters are the listener's configuration; the
// control plane puts them, from Consul's intentions, on the public
// listener and on the chains of a terminating gateway (one per linked
// service), so in a Weft mesh they decide inbound traffic. A listener
// without RBAC filters allows everything.
//
// On a connection (serveConn, conn.go): the mTLS handshake, then the
// network RBAC (admit) before a byte is read or an upstream dialled.
// On a configuration swap (bound.swap): enforce closes the open
// connections the new network RBAC denies, found in the socket's
// registry. Per HTTP request (ServeHTTP, http.go): after the header
// limits and the edge (edge.go), the HTTP RBAC (authorized) sees the
// normalized path; then setXFCC tells the app who the peer is.

import (
	"net"
	"net/http"
	"sync"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/rbac"
)

// allows runs the network RBAC filters on a connection: the listener's,
// and on a gateway's listener those of the chain its server name selects
// (a terminating gateway's chains carry the intentions of their service).
func (a *active) allows(c *connInfo) bool {
	if !rbac.AllowedByAll(a.RBAC, &c.who) {
		return false
	}
	if a.SNI == nil {
		return true
	}
	chain := a.SNI.Match(c.serverName)
	return chain == nil || rbac.AllowedByAll(chain.RBAC, &c.who)
}

// admit runs a's network RBAC on a connection just registered, before
// anything is read from it; a denied connection is forgotten and closed.
func (b *bound) admit(a *active, c *connInfo) bool {
	if a.allows(c) {
		return true
	}
	b.log.Debug("connection denied by RBAC; closing", "listener", a.Name, "peer", c.who.Peer, "remote", c.raw.RemoteAddr().String())
	b.registry.remove(c.conn)
	c.raw.Close()
	return false
}

// enforce closes the open connections that a, newly swapped in, denies.
func (b *bound) enforce(a *active) {
	for _, c := range b.registry.denied(a) {
		b.log.Info("closing connection now denied by RBAC", "listener", a.Name, "peer", c.who.Peer, "remote", c.raw.RemoteAddr().String())
		c.raw.Close()
	}
}

// registry holds the open connections of a bound socket, so that an RBAC
// change can close those it now denies. It is touched on accept, close and
// configuration swap, never per request.
type registry struct {
	mu    sync.Mutex
	conns map[net.Conn]*connInfo
}

func (r *registry) add(c *connInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		r.conns = make(map[net.Conn]*connInfo)
	}
	r.conns[c.conn] = c
}

func (r *registry) remove(conn net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, conn)
}

// len is the number of connections registered.
func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *registry) get(conn net.Conn) *connInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[conn]
}

// denied returns the connections a no longer allows.
func (r *registry) denied(a *active) []*connInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*connInfo
	for _, c := range r.conns {
		if !a.allows(c) {
			out = append(out, c)
		}
	}
	return out
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

// setXFCC sets x-forwarded-client-cert on a request to the app when its
// connection has a verified peer. The edge (stripMeshHeaders) has removed
// any value the client sent.
func setXFCC(r *http.Request, c *connInfo) {
	if c != nil && c.xfcc != nil {
		r.Header[xfccHeader] = c.xfcc
	}
}

// xfccValue renders x-forwarded-client-cert as Envoy does for the fields
// By and URI.
func xfccValue(localID, peer string) string {
	if localID == "" {
		return "URI=" + peer
	}
	return "By=" + localID + ";URI=" + peer
}
