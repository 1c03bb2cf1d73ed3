package router

import (
	"net/http"
	"net/url"
	"strings"
)

// hopByHop are the headers of one connection (RFC 9110 §7.6.1, plus the
// ones RFC 2616 listed and Proxy-Connection), never forwarded.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// clientForwarding are the forwarding headers a client may have set; the
// router does not pass them on (it does not vouch for them).
var clientForwarding = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// emptyUserAgent keeps http.Transport from adding its own User-Agent to
// a request that had none. Shared: header values are never appended to
// in place.
var emptyUserAgent = []string{""}

// upstreamHeader returns the header every attempt sends. The usual
// request has nothing to drop and a User-Agent: it is sent as it is,
// since the router already owns the request's header (route mutations
// were applied to it). Otherwise it is a copy (see copyUpstreamHeader), as the
// server still reads the request's own Connection header.
func upstreamHeader(in http.Header, upType string) http.Header {
	if upType != "" {
		return copyUpstreamHeader(in, upType)
	}
	if _, ok := in["User-Agent"]; !ok {
		return copyUpstreamHeader(in, upType)
	}
	for k := range in {
		if skipUpstream(k, nil) {
			return copyUpstreamHeader(in, upType)
		}
	}
	return in
}

// copyUpstreamHeader copies in, which the caller keeps, without hop-by-hop
// headers (those listed in Connection too) and client forwarding
// headers, in one map and one backing array of values. Te: trailers is
// kept when the client sent it, and upType, when not empty, is asked for
// again with Connection: Upgrade.
func copyUpstreamHeader(in http.Header, upType string) http.Header {
	conn := in["Connection"]
	nv := 0
	for _, vv := range in {
		nv += len(vv)
	}
	out := make(http.Header, len(in)+1)
	sv := make([]string, nv)
	for k, vv := range in {
		if skipUpstream(k, conn) {
			continue
		}
		if vv == nil {
			out[k] = nil
			continue
		}
		n := copy(sv, vv)
		out[k], sv = sv[:n:n], sv[n:]
	}
	if tokenIn(in["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	if upType != "" {
		out["Connection"] = []string{"Upgrade"}
		out["Upgrade"] = []string{upType}
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = emptyUserAgent
	}
	return out
}

func skipUpstream(k string, conn []string) bool {
	for _, h := range hopByHop {
		if k == h {
			return true
		}
	}
	for _, h := range clientForwarding {
		if k == h {
			return true
		}
	}
	return len(conn) > 0 && tokenIn(conn, k)
}

// removeHopByHop deletes a response's hop-by-hop headers in place.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}

// tokenIn reports whether any comma-separated element of values equals
// token, ignoring case.
func tokenIn(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.Trim(elem, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// upgradeType is the protocol a request or response asks to switch to,
// or "".
func upgradeType(h http.Header) string {
	if !tokenIn(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// isPrint reports whether s is printable ASCII.
func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// cleanQuery re-encodes a raw query that other servers may parse
// differently from Go (a ';' separator, a malformed escape), dropping
// what does not parse, as httputil.ReverseProxy does; others pass as
// they are.
func cleanQuery(q string) string {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return reencodeQuery(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(q)
			}
			i += 2
		}
	}
	return q
}

func reencodeQuery(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
