package listener

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/weft-mesh/weft/proxy/urlpath"
)

// xfccHeader is x-forwarded-client-cert in canonical form.
const xfccHeader = "X-Forwarded-Client-Cert"

// meshHeaderPrefix is the canonical prefix of the mesh's own headers,
// which clients may not set.
const meshHeaderPrefix = "X-Weft-"

// stripMeshHeaders removes what only the mesh may set: x-weft-* and
// x-forwarded-client-cert (RELIABILITY #15). It does not allocate.
func stripMeshHeaders(h http.Header) {
	for k := range h {
		if k == xfccHeader || strings.HasPrefix(k, meshHeaderPrefix) {
			delete(h, k)
		}
	}
}

// closeAfterAmbiguousFraming closes an HTTP/1.x connection served by
// net/http's server (--http1-server=net/http) after a request whose
// framing a peer could read differently, since that server cannot tell
// the handler:
//   - after a chunked HTTP/1.1 request: the server follows RFC 9112 §6.3
//     for a request with both Content-Length and Transfer-Encoding (the
//     chunked framing wins, the Content-Length is dropped), and the RFC
//     requires closing the connection after it;
//   - after every HTTP/1.0 request: the server ignores and drops a 1.0
//     request's Transfer-Encoding, so a body framed by it would be read
//     as the next request on a kept-alive connection.
//
// Bytes a client meant as body must never be served as a pipelined
// request (RELIABILITY #12). The lean server (http1head.go) refuses such
// requests before they reach a handler, so its connections stay open.
// The upstream always receives requests framed by the proxy itself.
func closeAfterAmbiguousFraming(w http.ResponseWriter, r *http.Request, c *connInfo) {
	if c != nil && c.leanHTTP1 || r.ProtoMajor != 1 {
		return
	}
	if r.ProtoMinor == 0 || len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}

// stripH2CUpgrade removes an HTTP/1.1 upgrade to cleartext HTTP/2
// (Upgrade: h2c with HTTP2-Settings), as Envoy does: forwarded, it would
// turn the upstream connection into an HTTP/2 tunnel that no route, RBAC
// rule or limit of this proxy sees (RELIABILITY #12). The request is
// served as plain HTTP/1.1. Other upgrades (WebSocket) pass.
func stripH2CUpgrade(r *http.Request) {
	if r.ProtoMajor != 1 || !headerHasToken(r.Header, "Upgrade", "h2c") {
		return
	}
	r.Header.Del("Upgrade")
	r.Header.Del("Http2-Settings")
	var keep []string
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "upgrade") && !strings.EqualFold(tok, "http2-settings") {
				keep = append(keep, tok)
			}
		}
	}
	r.Header.Del("Connection")
	if len(keep) > 0 {
		r.Header.Set("Connection", strings.Join(keep, ", "))
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// normalizePath normalizes the request's path (urlpath.Normalize) in
// place, so that RBAC, routing and the app all see the same path, and
// drops a fragment that ended up in the query. It returns the normalized
// escaped path, or false when the path is malformed.
func normalizePath(r *http.Request) (string, bool) {
	u := r.URL
	if i := strings.IndexByte(u.RawQuery, '#'); i >= 0 {
		u.RawQuery = u.RawQuery[:i]
	}
	raw := u.RawPath
	if raw == "" {
		raw = u.EscapedPath()
	}
	norm, ok := urlpath.Normalize(raw)
	if !ok {
		return "", false
	}
	if norm == raw {
		return norm, true
	}
	path, err := url.PathUnescape(norm)
	if err != nil {
		return "", false
	}
	u.Path, u.RawPath = path, norm
	return norm, true
}
