package http1client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/weft-mesh/weft/internal/httptoken"
)

// requestWriter writes the requests the lean client sends inline
// (inlineable) byte for byte as http.Request.Write does, which is what
// http.Transport sends (TestHTTP1ClientSendsWhatTransportSends holds the
// two side by side). It differs in cost only: no fmt, no sorted copy of
// the header (the keys are sorted in a slice the connection keeps), and a
// body written behind the head and flushed with it, in one write, where
// Request.Write flushes the head first for bodies it does not know to be
// in memory.
type requestWriter struct {
	keys []string // reused: the header's keys, sorted
}

// reqWriteExclude are the header fields Request.Write writes itself, or
// never: Host and User-Agent from their own fields, the framing from the
// body, and Trailer (only for chunked bodies, never inline).
func reqWriteExclude(key string) bool {
	switch key {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

const defaultUserAgent = "Go-http-client/1.1"

// write writes req's head and body to bw, and closes the body. It does
// not flush.
func (w *requestWriter) write(bw *bufio.Writer, req *http.Request) (err error) {
	if req.Body != nil {
		defer func() {
			if cerr := req.Body.Close(); err == nil {
				err = cerr
			}
		}()
	}
	host, err := requestHost(req)
	if err != nil {
		return err
	}
	path, query := requestTarget(req)
	if containsCTL(path) || containsCTL(query) {
		return errors.New("net/http: can't write control character in Request.URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if query != "" || req.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	ua := defaultUserAgent
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		writeField(bw, "User-Agent", ua)
	}
	if req.Close && !httptoken.Contains(firstValue(req.Header, "Connection"), "close") {
		bw.WriteString("Connection: close\r\n")
	}
	length := outgoingLength(req)
	if length > 0 || length == 0 && (method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch) {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
		bw.WriteString("\r\n")
	}
	w.writeHeader(bw, req.Header)
	bw.WriteString("\r\n")
	if length > 0 {
		return writeBody(bw, req.Body, length)
	}
	return nil
}

// writeHeader writes h's fields but the excluded ones, sorted by key, as
// Header.Write does: fields with invalid names dropped, newlines in
// values turned to spaces and the values trimmed.
func (w *requestWriter) writeHeader(bw *bufio.Writer, h http.Header) {
	keys := w.keys[:0]
	for k := range h {
		if !reqWriteExclude(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			writeField(bw, k, v)
		}
	}
	clear(keys)
	w.keys = keys[:0]
}

// writeField writes "key: value\r\n", the value as Header.Write writes
// it: CR and LF turned to spaces, and trimmed of spaces, tabs, CRs and
// LFs.
func writeField(bw *bufio.Writer, key, v string) {
	bw.WriteString(key)
	bw.WriteString(": ")
	v = strings.Trim(v, " \t\r\n")
	if strings.ContainsAny(v, "\r\n") {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c == '\r' || c == '\n' {
				bw.WriteByte(' ')
			} else {
				bw.WriteByte(c)
			}
		}
	} else {
		bw.WriteString(v)
	}
	bw.WriteString("\r\n")
}

// writeBody copies exactly length bytes of body behind the head, and
// fails, as Request.Write does, when body holds fewer or more.
func writeBody(bw *bufio.Writer, body io.Reader, length int64) error {
	n, err := bw.ReadFrom(io.LimitReader(body, length))
	if err != nil {
		return err
	}
	extra, err := io.Copy(io.Discard, body)
	if err != nil {
		return err
	}
	if n+extra != length {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", length, n+extra)
	}
	return nil
}

// requestHost is the Host field of req as Request.Write writes it: the
// Host, else the URL's; in punycode; empty when not a valid Host value
// (so no field can be smuggled in it); without an IPv6 zone.
func requestHost(req *http.Request) (string, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return "", err
	}
	if !httpguts.ValidHostHeader(host) {
		return "", nil
	}
	return removeZone(host), nil
}

// removeZone removes the IPv6 zone from host ("[fe80::1%en0]:80" →
// "[fe80::1]:80"), as RFC 6874 asks of a client.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// requestTarget returns the two halves of req.URL.RequestURI(), without
// building it: the path (or opaque part), and the raw query.
func requestTarget(req *http.Request) (path, query string) {
	u := req.URL
	path = u.Opaque
	if path == "" {
		path = u.EscapedPath()
		if path == "" {
			path = "/"
		}
	} else if strings.HasPrefix(path, "//") {
		path = u.Scheme + ":" + path
	}
	return path, u.RawQuery
}

func containsCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// outgoingLength is the length of req's body: 0 without one, as
// Request.outgoingLength says (inline requests have a known length).
func outgoingLength(req *http.Request) int64 {
	if req.Body == nil || req.Body == http.NoBody {
		return 0
	}
	return req.ContentLength
}

func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
