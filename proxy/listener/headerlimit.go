package listener

import (
	"net/http"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/localreply"
)

// Request header limits (RELIABILITY #10) are enforced in two tiers.
//
// The listener checks every request against its configuration's limits
// (max_request_headers_kb, common_http_protocol_options.max_headers_count)
// before anything else reads the request, and answers one over them with
// a 431 local reply naming the limit in x-weft-error (too_many_headers or
// headers_too_large), over HTTP/1.1 and HTTP/2 alike. The request never
// reaches RBAC, the router or the app.
//
// Go's HTTP server stops reading a header block at headerReadBound: twice
// the byte limit (HTTP/2 adds 32 bytes per field, as HPACK counts them,
// and 320 bytes of slack; HTTP/1.1 counts raw bytes plus 4 KiB of slack).
// Beyond it, Go's server answers by itself: a plain 431 and a closed
// connection for HTTP/1.1, a 431 on the stream for HTTP/2 (GOAWAY when
// the encoded block is far larger still, or one field is longer than the
// bound), without x-weft-error. The bound keeps what a single request can
// make the proxy parse and hold proportional to the configured limit.

// headerReadBound is the http.Server's MaxHeaderBytes for a socket whose
// first configuration limits headers to limit bytes; 0 (no limit) leaves
// Go's default of 1 MiB.
func headerReadBound(limit int) int {
	if limit <= 0 {
		return 0
	}
	return 2 * limit
}

// headerLimitExceeded returns why r is over cfg's header limits, or "".
// Fields are counted per value, as they arrived (a repeated name counts
// each time). Bytes are counted as Envoy counts them: names and values,
// with the method, request target and authority (HTTP/2's pseudo-headers),
// without separators. A zero limit is no limit. It does not allocate.
func headerLimitExceeded(r *http.Request, cfg *config.HTTP) localreply.Reason {
	fields, size := 0, len(r.Method)+len(r.RequestURI)+len(r.Host)
	for name, values := range r.Header {
		fields += len(values)
		for _, v := range values {
			size += len(name) + len(v)
		}
	}
	switch {
	case cfg.MaxRequestHeaders > 0 && fields > cfg.MaxRequestHeaders:
		return localreply.TooManyHeaders
	case cfg.MaxRequestHeaderBytes > 0 && size > cfg.MaxRequestHeaderBytes:
		return localreply.HeadersTooLarge
	}
	return ""
}
