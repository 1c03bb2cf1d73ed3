package listener

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/weft-mesh/weft/internal/httptoken"
)

// chunkWriter writes the body to the connection's buffer: the header
// before the first bytes, and chunk framing when chunking.
type chunkWriter struct{ w *h1Response }

func (cw *chunkWriter) Write(p []byte) (int, error) {
	w := cw.w
	if !w.headerWritten {
		w.writeHeader(p)
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil // the body of a HEAD response is eaten
	}
	bw := w.hc.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(w.clenBuf[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunking && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.hc.conn.Close()
	}
	return n, err
}

func (cw *chunkWriter) flush() error {
	if !cw.w.headerWritten {
		cw.w.writeHeader(nil)
	}
	return cw.w.hc.bw.Flush()
}

// close ends the body: the last chunk, the trailers and the empty line.
func (cw *chunkWriter) close() {
	w := cw.w
	if !w.headerWritten {
		w.writeHeader(nil)
	}
	if !w.chunking {
		return
	}
	bw := w.hc.bw
	bw.WriteString("0\r\n")
	if t := w.finalTrailers(); t != nil {
		t.Write(bw)
	}
	bw.WriteString("\r\n")
}

// finalTrailers are the declared trailers and those set with
// http.TrailerPrefix, as the handler left them.
func (w *h1Response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.header {
		if kk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.header[k] {
			t.Add(k, v)
		}
	}
	return t
}

// extraHeader holds the fields the server adds to the handler's header,
// written after it in net/http's order.
type extraHeader struct {
	contentType      string
	connection       string
	transferEncoding string
	date             []byte
	contentLength    []byte
}

func (h *extraHeader) write(bw *bufio.Writer) {
	if h.date != nil {
		bw.WriteString("Date: ")
		bw.Write(h.date)
		bw.WriteString("\r\n")
	}
	if h.contentLength != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(h.contentLength)
		bw.WriteString("\r\n")
	}
	for _, f := range [...]struct{ k, v string }{{"Content-Type", h.contentType}, {"Connection", h.connection}, {"Transfer-Encoding", h.transferEncoding}} {
		if f.v != "" {
			bw.WriteString(f.k)
			bw.WriteString(": ")
			bw.WriteString(f.v)
			bw.WriteString("\r\n")
		}
	}
}

// writeHeader decides the response's framing and connection handling
// and writes its header to the connection's buffer. p is the start of
// the body (all of it when the handler is done), sniffed for a
// Content-Type when there is none. It follows net/http's
// chunkWriter.writeHeader rule by rule: a protocol state machine, long
// on purpose.
func (w *h1Response) writeHeader(p []byte) {
	w.headerWritten = true
	keepAlives := !w.hc.s.draining.Load()
	isHEAD := w.req.Method == http.MethodHead
	header := w.sent
	del := func(key string) { delete(header, key) }
	var extra extraHeader

	trailers := false
	for k := range header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(header, k) // a trailer, set early: not a header field
			trailers = true
		}
	}
	for _, v := range header["Trailer"] {
		trailers = true
		w.declareTrailers(v)
	}
	te := headerGet(header, "Transfer-Encoding")
	hasTE := te != ""

	// A handler done within the buffer gets a Content-Length, even 0,
	// unless it must not have one.
	if w.handlerDone && !trailers && !hasTE && bodyAllowedForStatus(w.status) && !headerHas(header, "Content-Length") && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		extra.contentLength = strconv.AppendInt(w.clenBuf[:0], int64(len(p)), 10)
	}
	if w.wants10Alive && keepAlives {
		if headerGet(header, "Content-Length") != "" && headerGet(header, "Connection") == "keep-alive" {
			w.closeAfter = false
		}
	}
	hasCL := w.contentLength != -1
	if w.wants10Alive && (isHEAD || hasCL || !bodyAllowedForStatus(w.status)) {
		if _, set := header["Connection"]; !set {
			extra.connection = "keep-alive"
		}
	} else if !w.req.ProtoAtLeast(1, 1) || w.wantsClose {
		w.closeAfter = true
	}
	if headerGet(header, "Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}
	// A client that asked for 100-continue and whose body was not read
	// to its end: the rest of the body would be read as the next request.
	if w.body != nil && w.body.expect && !w.body.eof.Load() {
		w.closeAfter = true
	}
	if w.req.ContentLength != 0 && !w.closeAfter && !w.fullDuplex && w.body != nil {
		if !w.body.discardBeforeResponse() {
			w.closeAfter = true
		}
		if w.body.tooBig {
			w.bodyLimitHit, w.closeAfter = true, true
			del("Connection")
			extra.connection = "close"
		}
	}

	code := w.status
	if bodyAllowedForStatus(code) {
		_, haveType := header["Content-Type"]
		if header.Get("Content-Encoding") == "" && !haveType && !hasTE && len(p) > 0 {
			extra.contentType = http.DetectContentType(p)
		}
	} else {
		for _, k := range suppressedHeaders(code) {
			del(k)
		}
	}
	if !headerHas(header, "Date") {
		extra.date = time.Now().UTC().AppendFormat(w.dateBuf[:0], http.TimeFormat)
	}
	if hasCL && hasTE && te != "identity" {
		w.hc.s.log.Debug("http1: handler set both Transfer-Encoding and Content-Length; Content-Length ignored", "transfer_encoding", te)
		del("Content-Length")
		hasCL = false
	}
	switch {
	case isHEAD || !bodyAllowedForStatus(code):
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case w.req.ProtoAtLeast(1, 1):
		if hasTE && te == "identity" {
			// No framing: the body ends when the connection closes.
			w.chunking, w.closeAfter = false, true
			del("Transfer-Encoding")
		} else {
			w.chunking = true
			extra.transferEncoding = "chunked"
			if hasTE && te == "chunked" {
				del("Transfer-Encoding") // written once, by extra
			}
		}
	default:
		// HTTP/1.0 has no chunking: the body ends with the connection.
		w.closeAfter = true
		del("Transfer-Encoding")
	}
	if w.chunking {
		del("Content-Length")
	}
	if w.closeAfter && (!keepAlives || !httptoken.Contains(headerGet(header, "Connection"), "close")) && !isProtocolSwitchResponse(code, header) {
		del("Connection")
		if w.req.ProtoAtLeast(1, 1) {
			extra.connection = "close"
		}
	}

	bw := w.hc.bw
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code, w.statusBuf[:])
	header.WriteSubset(bw, nil)
	extra.write(bw)
	bw.WriteString("\r\n")
}

// declareTrailers notes the trailers a Trailer header value announces.
func (w *h1Response) declareTrailers(v string) {
	for f := range strings.SplitSeq(v, ",") {
		f = textproto.TrimString(f)
		if f == "" {
			continue
		}
		k := http.CanonicalHeaderKey(f)
		if httpguts.ValidTrailerHeader(k) {
			w.trailers = append(w.trailers, k)
		}
	}
}

func writeStatusLine(bw *bufio.Writer, is11 bool, code int, scratch []byte) {
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	bw.Write(strconv.AppendInt(scratch[:0], int64(code), 10))
	if text := http.StatusText(code); text != "" {
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
	} else {
		bw.WriteString(" status code ")
		bw.Write(strconv.AppendInt(scratch[:0], int64(code), 10))
		bw.WriteString("\r\n")
	}
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

var (
	suppressedHeaders304    = []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	suppressedHeadersNoBody = []string{"Content-Length", "Transfer-Encoding"}
)

func suppressedHeaders(status int) []string {
	switch {
	case status == http.StatusNotModified:
		return suppressedHeaders304
	case !bodyAllowedForStatus(status):
		return suppressedHeadersNoBody
	}
	return nil
}

func isProtocolSwitchResponse(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && h.Get("Upgrade") != "" &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// headerGet returns the first value of a field by its canonical name,
// without canonicalizing it (net/http's Header.get).
func headerGet(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func headerHas(h http.Header, key string) bool {
	_, ok := h[key]
	return ok
}
