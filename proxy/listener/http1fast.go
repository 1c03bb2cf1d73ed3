package listener

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The common request — an HTTP/1.1 request in origin form, without a
// body, its lines ending in CRLF, its field names tokens — is parsed here,
// from the header block the scan found whole in the read buffer, into
// exactly what http.ReadRequest makes of it (FuzzParseFastRequest checks
// that on any input). Everything else goes to http.ReadRequest, which
// reads the same bytes: a body (Content-Length, Transfer-Encoding,
// Trailer), HTTP/1.0, other methods, other target forms, bare LF, obs-fold,
// a field name with a space or a byte outside the token set, a control
// byte in a value, more than one Host, or Pragma (net/http adds a
// Cache-Control for it).
//
// What it saves, per request, is net/http's line-by-line reading through
// a textproto.Reader: one string per line and per field value. Here the
// block's field values are cut from one string, and common field names
// are constants.

// fastMethods are the methods the fast path takes, as constants.
var fastMethods = [...]string{http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions}

// parseFastRequest parses block (a request's header block, its final
// empty line included) into r when it is a request the fast path takes,
// and reports whether it did. r is left as it was when it does not.
func parseFastRequest(block []byte, r *http.Request) bool {
	line, rest, ok := cutCRLF(block)
	if !ok {
		return false
	}
	method, target, ok := parseFastRequestLine(line)
	if !ok {
		return false
	}
	h, host, closeConn, ok := parseFastHeader(rest)
	if !ok {
		return false
	}
	requestURI := string(target)
	u, err := url.ParseRequestURI(requestURI)
	if err != nil {
		return false
	}
	if u.Host != "" {
		host = u.Host // never for a target in origin form; as net/http does
	}
	*r = http.Request{
		Method: method, URL: u, RequestURI: requestURI,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Close: closeConn, Host: host,
	}
	return true
}

// parseFastRequestLine takes "METHOD /target HTTP/1.1".
func parseFastRequestLine(line []byte) (method string, target []byte, ok bool) {
	m, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return "", nil, false
	}
	for _, fm := range fastMethods {
		if string(m) == fm {
			return fm, target, true
		}
	}
	return "", nil, false
}

// parseFastHeader parses the field lines of block, after the request
// line, up to the empty line. It returns the fields as http.ReadRequest
// returns them (canonical names, values trimmed, Host removed), the Host
// value, and whether the request asks to close the connection.
func parseFastHeader(block []byte) (h http.Header, host string, closeConn, ok bool) {
	n := bytes.Count(block, []byte{'\n'}) - 1 // field lines
	if n < 0 {
		return nil, "", false, false
	}
	// One string holds every value; the values are cut from it.
	all := string(block)
	h = make(http.Header, n)
	vals := make([]string, n)
	hosts := 0
	off := 0
	for {
		line, rest, ok := cutCRLF(block[off:])
		if !ok {
			return nil, "", false, false
		}
		lineStart := off
		off = len(block) - len(rest)
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 {
			return nil, "", false, false
		}
		key, ok := fastCanonicalKey(name)
		if !ok {
			return nil, "", false, false
		}
		switch key {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Pragma":
			return nil, "", false, false
		}
		start, end := trimOWSRange(value)
		if !validFieldValue(value[start:end]) {
			return nil, "", false, false
		}
		vstart := lineStart + len(name) + 1
		v := all[vstart+start : vstart+end]
		if key == "Host" {
			hosts++
			host = v
			if hosts > 1 {
				return nil, "", false, false
			}
			continue // http.ReadRequest removes it
		}
		if vv := h[key]; vv != nil {
			h[key] = append(vv, v)
		} else {
			vals[0] = v
			h[key], vals = vals[:1:1], vals[1:]
		}
	}
	if off != len(block) {
		return nil, "", false, false
	}
	closeConn = httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	return h, host, closeConn, true
}

// cutCRLF cuts the line before the first CRLF; false when there is none,
// or when the line holds a bare CR or LF.
func cutCRLF(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// trimOWSRange returns the bounds of v without leading and trailing
// spaces and tabs.
func trimOWSRange(v []byte) (start, end int) {
	end = len(v)
	for start < end && (v[start] == ' ' || v[start] == '\t') {
		start++
	}
	for end > start && (v[end-1] == ' ' || v[end-1] == '\t') {
		end--
	}
	return start, end
}

// validFieldValue reports whether every byte of v is one net/textproto
// accepts in a value: VCHAR, SP, HTAB or obs-text.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// fastCanonicalKey returns the canonical form of a field name made of
// token bytes (net/textproto's), as a constant for common names; false
// for a name with any other byte.
func fastCanonicalKey(name []byte) (string, bool) {
	var buf [64]byte
	if len(name) > len(buf) {
		return "", false
	}
	upper := true
	for i, c := range name {
		if !isTokenByte(c) {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	k := buf[:len(name)]
	if s, ok := commonFieldNames[string(k)]; ok {
		return s, true
	}
	return string(k), true
}

// isTokenByte reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// commonFieldNames holds, as constants, field names requests commonly
// carry, so that they cost no allocation.
var commonFieldNames = func() map[string]string {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Type", "Cookie", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "Origin", "Referer", "User-Agent",
		"Traceparent", "Tracestate", "Baggage", "B3", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Client-Cert",
		"X-Request-Id", "X-Envoy-Attempt-Count", "X-Envoy-Expected-Rq-Timeout-Ms", "Upgrade",
		"Grpc-Timeout", "Te",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = n
	}
	return m
}()
