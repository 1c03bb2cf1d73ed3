package cluster

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/weft-mesh/weft/proxy/internal/h2wire"
)

// h2UserAgent is the User-Agent sent when a request has none, as
// http.Transport sends it.
const h2UserAgent = "Go-http-client/2.0"

// h2RequestHeader is a request's header block, checked: the fields go to
// the encoder in visit's order. It is the header of a request, or the
// trailers of one (trailers set).
type h2RequestHeader struct {
	req           *http.Request
	trailers      http.Header
	authority     string
	path          string
	contentLength string // "" for none
	announce      string // the Trailer field, "" for none
	listSize      uint64 // as SETTINGS_MAX_HEADER_LIST_SIZE counts it
}

// newH2RequestHeader checks req as http.Transport does before it sends a
// request over HTTP/2, and returns its header block.
func newH2RequestHeader(req *http.Request, hasBody bool) (*h2RequestHeader, error) {
	h := &h2RequestHeader{req: req}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return nil, err
	}
	if !httpguts.ValidHostHeader(host) {
		return nil, errors.New("http2: invalid Host header")
	}
	h.authority = host
	h.path = req.URL.RequestURI()
	if !strings.HasPrefix(h.path, "/") && h.path != "*" {
		if req.URL.Opaque == "" {
			return nil, fmt.Errorf("http2: invalid request :path %q", h.path)
		}
		return nil, fmt.Errorf("http2: invalid request :path %q from URL.Opaque = %q", h.path, req.URL.Opaque)
	}
	if err := checkH2ConnHeaders(req.Header); err != nil {
		return nil, err
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("http2: invalid HTTP header name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("http2: invalid HTTP header value for header %q", k)
			}
		}
	}
	contentLength := int64(0)
	if hasBody {
		contentLength = req.ContentLength
		if contentLength == 0 {
			contentLength = -1
		}
	}
	if contentLength > 0 || contentLength == 0 && (req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch) {
		h.contentLength = strconv.FormatInt(contentLength, 10)
	}
	if len(req.Trailer) > 0 {
		keys := make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, fmt.Errorf("http2: invalid Trailer key %q", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.announce = strings.Join(keys, ",")
	}
	h.visit(func(name, value string) { h.listSize += uint64(len(name) + len(value) + 32) })
	return h, nil
}

// newH2Trailers returns the header block of a request's trailers.
func newH2Trailers(t http.Header) (*h2RequestHeader, error) {
	h := &h2RequestHeader{trailers: t}
	for k, vv := range t {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("http2: invalid HTTP trailer name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("http2: invalid HTTP trailer value for trailer %q", k)
			}
		}
	}
	return h, nil
}

// checkH2ConnHeaders refuses what http.Transport refuses to send over
// HTTP/2: an Upgrade, a Transfer-Encoding other than chunked, and a
// Connection other than close or keep-alive.
func checkH2ConnHeaders(h http.Header) error {
	if v := h["Upgrade"]; len(v) > 0 && (v[0] != "" && v[0] != "chunked") {
		return fmt.Errorf("http2: invalid Upgrade request header: %q", v)
	}
	if v := h["Transfer-Encoding"]; len(v) > 0 && (len(v) > 1 || v[0] != "" && v[0] != "chunked") {
		return fmt.Errorf("http2: invalid Transfer-Encoding request header: %q", v)
	}
	if v := h["Connection"]; len(v) > 0 && (len(v) > 1 || v[0] != "" && !strings.EqualFold(v[0], "close") && !strings.EqualFold(v[0], "keep-alive")) {
		return fmt.Errorf("http2: invalid Connection request header: %q", v)
	}
	return nil
}

// visit calls f with each field of the block, in order: the
// pseudo-headers, then the fields http.Transport sends — lower-cased,
// without connection-specific ones, the Cookie split into crumbs
// (RFC 9113 §8.2.3), one User-Agent (Go's when there is none) — then
// Trailer and Content-Length.
func (h *h2RequestHeader) visit(f func(name, value string)) {
	if h.trailers != nil {
		for k, vv := range h.trailers {
			name := h2wire.Lower(k)
			for _, v := range vv {
				f(name, v)
			}
		}
		return
	}
	req := h.req
	f(":authority", h.authority)
	f(":method", cmpOr(req.Method, http.MethodGet))
	f(":path", h.path)
	f(":scheme", req.URL.Scheme)
	sawUA := false
	for k, vv := range req.Header {
		switch {
		case strings.EqualFold(k, "host"), strings.EqualFold(k, "content-length"),
			strings.EqualFold(k, "connection"), strings.EqualFold(k, "proxy-connection"),
			strings.EqualFold(k, "transfer-encoding"), strings.EqualFold(k, "upgrade"),
			strings.EqualFold(k, "keep-alive"):
			continue
		case strings.EqualFold(k, "user-agent"):
			sawUA = true
			if len(vv) < 1 || vv[0] == "" {
				continue
			}
			vv = vv[:1]
		case strings.EqualFold(k, "cookie"):
			for _, v := range vv {
				for {
					i := strings.IndexByte(v, ';')
					if i < 0 {
						break
					}
					f("cookie", v[:i])
					i++
					for i < len(v) && v[i] == ' ' {
						i++
					}
					v = v[i:]
				}
				if v != "" {
					f("cookie", v)
				}
			}
			continue
		}
		name := h2wire.Lower(k)
		for _, v := range vv {
			f(name, v)
		}
	}
	if h.announce != "" {
		f("trailer", h.announce)
	}
	if h.contentLength != "" {
		f("content-length", h.contentLength)
	}
	if !sawUA {
		f("user-agent", h2UserAgent)
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// writeHeaderLocked encodes hdr and writes it on stream id as HEADERS
// and, past maxFrame bytes, CONTINUATION frames. Call with wmu held: the
// encoder's table must change in the order blocks go out.
func (cc *h2Conn) writeHeaderLocked(id uint32, hdr *h2RequestHeader, end bool, maxFrame int) error {
	cc.hbuf.Reset()
	hdr.visit(func(name, value string) { cc.henc.WriteField(h2wire.Field(name, value)) })
	block := cc.hbuf.Bytes()
	first := true
	for len(block) > 0 || first {
		n := min(len(block), maxFrame)
		frag := block[:n]
		block = block[n:]
		var err error
		if first {
			err = cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = cc.fr.WriteContinuation(id, len(block) == 0, frag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
