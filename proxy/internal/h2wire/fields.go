// Package h2wire holds the rules of HTTP/2 on the wire that the
// lean HTTP/2 server (proxy/listener) and client (proxy/cluster) share:
// field names go on the wire in lower case, connection-specific fields
// (RFC 9113 §8.2.2) never do, and frames that arrived together are
// handled together (batch.go).
package h2wire

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// Lower returns a header name in lower case, without allocating for the
// common ones.
func Lower(name string) string {
	if v, ok := commonLower[name]; ok {
		return v
	}
	return strings.ToLower(name)
}

// Canonical returns the canonical form of a field name as it arrives on
// the wire (lower case), without allocating for the common ones:
// textproto.CanonicalMIMEHeaderKey allocates for every name outside its
// own short table, and gRPC's are outside it.
func Canonical(lower string) string {
	if v, ok := commonCanonical[lower]; ok {
		return v
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}

// Values gives the fields of one header block their value slices from
// one array, so that a block of n fields costs one allocation rather
// than n, as net/textproto's reader does. A name's first value is a
// slice of capacity one: appending a second value copies it out.
type Values struct{ buf []string }

// NewValues is room for n values.
func NewValues(n int) Values { return Values{buf: make([]string, 0, n)} }

// Add adds v to h[k].
func (vs *Values) Add(h http.Header, k, v string) {
	cur := h[k]
	if len(cur) > 0 || len(vs.buf) == cap(vs.buf) {
		h[k] = append(cur, v)
		return
	}
	vs.buf = append(vs.buf, v)
	n := len(vs.buf)
	h[k] = vs.buf[n-1 : n : n]
}

// Header is a block's fields as an http.Header, their values from one
// array (Values) and their names canonical.
func Header(fields []hpack.HeaderField) http.Header {
	h := make(http.Header, len(fields))
	vs := NewValues(len(fields))
	for _, hf := range fields {
		vs.Add(h, Canonical(hf.Name), hf.Value)
	}
	return h
}

// ConnectionSpecific reports whether a lower-case field name is one
// HTTP/2 forbids: Connection, Keep-Alive, Proxy-Connection,
// Transfer-Encoding and Upgrade. (TE is allowed with the value
// "trailers" only; callers check it themselves.)
func ConnectionSpecific(lower string) bool {
	switch lower {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

var commonLower = func() map[string]string {
	m := make(map[string]string)
	for _, v := range []string{
		"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
		"age", "authorization", "cache-control", "content-disposition", "content-encoding",
		"content-language", "content-length", "content-location", "content-range", "content-type",
		"cookie", "date", "etag", "expect", "expires", "from", "grpc-accept-encoding",
		"grpc-encoding", "grpc-message", "grpc-status", "grpc-status-details-bin", "grpc-timeout",
		"grpc-trace-bin", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
		"if-unmodified-since", "last-modified", "link", "location", "max-forwards", "origin",
		"proxy-authenticate", "proxy-authorization", "range", "referer", "refresh", "retry-after",
		"server", "set-cookie", "strict-transport-security", "te", "trailer", "traceparent",
		"tracestate", "transfer-encoding", "user-agent", "vary", "via", "www-authenticate",
		"x-b3-parentspanid", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid",
		"x-envoy-attempt-count", "x-envoy-expected-rq-timeout-ms", "x-forwarded-client-cert",
		"x-forwarded-for", "x-forwarded-proto", "x-request-id", "x-weft-error",
	} {
		m[http.CanonicalHeaderKey(v)] = v
	}
	return m
}()

// commonCanonical is commonLower reversed.
var commonCanonical = func() map[string]string {
	m := make(map[string]string, len(commonLower))
	for canonical, lower := range commonLower {
		m[lower] = canonical
	}
	return m
}()
