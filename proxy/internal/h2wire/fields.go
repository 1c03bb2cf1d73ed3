// Package h2wire holds the rules of HTTP/2 on the wire that the
// lean HTTP/2 server (proxy/listener) and client (proxy/cluster) share:
// field names go on the wire in lower case, connection-specific fields
// (RFC 9113 §8.2.2) never do, and frames that arrived together are
// handled together (batch.go).
package h2wire

import (
	"net/http"
	"strings"
)

// Lower returns a header name in lower case, without allocating for the
// common ones.
func Lower(name string) string {
	if v, ok := commonLower[name]; ok {
		return v
	}
	return strings.ToLower(name)
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
