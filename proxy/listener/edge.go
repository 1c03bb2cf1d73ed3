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
