package listener

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Response is the lean server's http.ResponseWriter, one per
// connection, reset for every request. It frames responses as net/http's
// server does (server.go: response, chunkWriter): the body goes through a
// buffer of bufferBeforeChunking bytes; the header is written when that
// buffer first fills, when the handler flushes or when it returns — with
// a Content-Length if the handler gave one or returned within the
// buffer, chunked otherwise (for HTTP/1.1; HTTP/1.0 closes instead).
//
// It implements http.Flusher, http.Hijacker and what
// http.ResponseController asks for (FlushError, SetReadDeadline,
// SetWriteDeadline, EnableFullDuplex). The handler's goroutine calls
// every method, except WriteHeader with a 1xx status, which the router
// may call from a transport goroutine while the handler waits for the
// final response.
type h1Response struct {
	hc   *h1Conn
	req  *http.Request
	body *h1Body // nil for a request without a body

	header http.Header // the handler's: reused, cleared per request
	// sent is the header as of WriteHeader, what is written: changes the
	// handler makes after WriteHeader (trailers) must not be. It is a
	// shallow copy into a map reused per connection, where net/http
	// clones the header (allocations) per response.
	sent http.Header
	buf  *bufio.Writer // bufferBeforeChunking bytes, to cw
	cw   chunkWriter

	wroteHeader   bool // WriteHeader was called (logically)
	headerWritten bool // the header is in the connection's buffer
	handlerDone   bool
	status        int
	contentLength int64 // declared or computed; -1 unknown
	written       int64
	chunking      bool
	closeAfter    bool
	bodyLimitHit  bool // an unread body too large to discard
	fullDuplex    bool
	wantsClose    bool
	wants10Alive  bool
	trailers      []string // declared in the Trailer header

	clenBuf   [20]byte
	dateBuf   [len(http.TimeFormat)]byte
	statusBuf [3]byte
}

var (
	_ http.ResponseWriter = (*h1Response)(nil)
	_ http.Flusher        = (*h1Response)(nil)
	_ http.Hijacker       = (*h1Response)(nil)
)

func (w *h1Response) init(hc *h1Conn) {
	w.hc = hc
	w.cw.w = w
	w.header = make(http.Header)
	w.sent = make(http.Header)
	if v := chunkPool.Get(); v != nil {
		w.buf = v.(*bufio.Writer)
		w.buf.Reset(&w.cw)
	} else {
		w.buf = bufio.NewWriterSize(&w.cw, bufferBeforeChunking)
	}
}

func (w *h1Response) release() {
	if w.buf != nil {
		w.buf.Reset(nil)
		chunkPool.Put(w.buf)
		w.buf = nil
	}
}

// reset prepares w for r, wrapping r's body.
func (w *h1Response) reset(r *http.Request) {
	clear(w.header)
	clear(w.sent)
	w.req, w.body = r, nil
	w.buf.Reset(&w.cw)
	w.wroteHeader, w.headerWritten, w.handlerDone = false, false, false
	w.status, w.contentLength, w.written = 0, -1, 0
	w.chunking, w.closeAfter, w.bodyLimitHit, w.fullDuplex = false, false, false, false
	w.trailers = w.trailers[:0]
	w.wantsClose = r.Close || hasToken(headerGet(r.Header, "Connection"), "close")
	w.wants10Alive = r.ProtoMajor == 1 && r.ProtoMinor == 0 && hasToken(headerGet(r.Header, "Connection"), "keep-alive")
	w.closeAfter = isH2Upgrade(r)
	if r.Body != nil && r.Body != http.NoBody {
		w.body = &h1Body{hc: w.hc, src: r.Body, remaining: r.ContentLength}
		r.Body = w.body
	}
}

// expectations handles the request's Expect header as net/http's server
// does: 100-continue is sent on the body's first read (HTTP/1.1 with a
// body); any other expectation is refused with 417. It reports whether
// the request is to be served.
func (w *h1Response) expectations() bool {
	r := w.req
	expect := headerGet(r.Header, "Expect")
	if hasToken(expect, "100-continue") {
		if r.ProtoAtLeast(1, 1) && r.ContentLength != 0 && w.body != nil {
			w.body.expect = true
			w.hc.canWriteContinue.Store(true)
		}
		return true
	}
	if expect == "" {
		return true
	}
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusExpectationFailed)
	w.finish()
	return false
}

func (w *h1Response) Header() http.Header { return w.header }

func (w *h1Response) WriteHeader(code int) {
	if w.hc.hijacked {
		w.hc.s.log.Debug("http1: WriteHeader on a hijacked connection")
		return
	}
	if w.wroteHeader {
		w.hc.s.log.Debug("http1: superfluous WriteHeader", "status", code)
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 101 || code > 199 {
		w.hc.disableWriteContinue()
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	for k, vv := range w.header {
		w.sent[k] = vv
	}
	if cl := headerGet(w.header, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.hc.s.log.Debug("http1: invalid Content-Length from the handler", "value", cl)
			w.header.Del("Content-Length")
			w.sent.Del("Content-Length")
		}
	}
}

// excludedNoBody are the fields a header without a body does not carry.
var excludedNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

// writeInformational sends a 1xx response at once, with the header as it
// is (RFC 8297: the map is not cleared).
func (w *h1Response) writeInformational(code int) {
	hc := w.hc
	hc.continueMu.Lock()
	defer hc.continueMu.Unlock()
	writeStatusLine(hc.bw, w.req.ProtoAtLeast(1, 1), code, w.statusBuf[:])
	w.header.WriteSubset(hc.bw, excludedNoBody)
	hc.bw.WriteString("\r\n")
	hc.bw.Flush()
}

func (w *h1Response) Write(p []byte) (int, error) {
	if err := w.beforeWrite(len(p)); err != nil || len(p) == 0 {
		return 0, err
	}
	return w.buf.Write(p)
}

// WriteString spares a handler that writes strings a conversion.
func (w *h1Response) WriteString(s string) (int, error) {
	if err := w.beforeWrite(len(s)); err != nil || len(s) == 0 {
		return 0, err
	}
	return w.buf.WriteString(s)
}

func (w *h1Response) beforeWrite(n int) error {
	if w.hc.hijacked {
		return http.ErrHijacked
	}
	w.hc.disableWriteContinue()
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return nil
	}
	if !bodyAllowedForStatus(w.status) {
		return http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength != -1 && w.written > w.contentLength {
		return http.ErrContentLength
	}
	return nil
}

// FlushError sends what is buffered, the header first.
func (w *h1Response) FlushError() error {
	if w.hc.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	err := w.buf.Flush()
	if e := w.cw.flush(); err == nil {
		err = e
	}
	return err
}

func (w *h1Response) Flush() { w.FlushError() }

// Hijack hands the connection to the handler (protocol upgrades). The
// returned net.Conn reads first what the client sent after its request,
// if anything. The connection leaves the server: it is no longer drained
// or closed by it.
func (w *h1Response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hc := w.hc
	if w.handlerDone {
		return nil, nil, errors.New("http1: Hijack after the handler returned")
	}
	if hc.hijacked {
		return nil, nil, http.ErrHijacked
	}
	hc.disableWriteContinue()
	if w.wroteHeader {
		w.cw.flush()
	}
	hc.stopWatch()
	hc.hijacked = true
	hc.s.untrack(hc)
	hc.info.hijacked.Store(true)
	hc.conn.SetDeadline(time.Time{})
	var conn net.Conn = hc.conn
	if hc.br.Buffered() > 0 || len(hc.src.pending) > 0 {
		conn = &bufferedConn{Conn: hc.conn, r: hc.br}
	}
	hc.bw.Reset(hc.conn)
	return conn, bufio.NewReadWriter(hc.br, hc.bw), nil
}

func (w *h1Response) SetReadDeadline(t time.Time) error { return w.hc.conn.SetReadDeadline(t) }

func (w *h1Response) SetWriteDeadline(t time.Time) error {
	w.hc.writeDeadline = true
	return w.hc.conn.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler read the request body after writing
// the response: the body is not discarded when the header is written.
func (w *h1Response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// finish completes the response once the handler returned: the header if
// not written yet (with a Content-Length when the body fit the buffer),
// the buffered body, the last chunk and trailers. Then it discards what
// the handler left of the request body, up to maxPostHandlerReadBytes.
func (w *h1Response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.buf.Flush()
	w.cw.close()
	w.hc.bw.Flush()
	if w.body != nil {
		w.body.closeAfterHandler()
	}
}

// abandon leaves a response the handler aborted (panicked): what is in
// the connection's buffer goes out, the response stays incomplete, and
// the connection closes.
func (w *h1Response) abandon() {
	w.handlerDone = true
	w.hc.disableWriteContinue()
	w.hc.bw.Flush()
	if w.body != nil {
		w.body.abandon()
	}
}

// optionsAsterisk answers "OPTIONS *" as net/http's server does, without
// the handler: 200 with no body, reading at most 4 KiB of a request body.
func (w *h1Response) optionsAsterisk() {
	w.Header().Set("Content-Length", "0")
	if w.req.ContentLength == 0 {
		return
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(w.req.Body, 4<<10+1)); n > 4<<10 {
		w.closeAfter, w.bodyLimitHit = true, true
		w.Header().Set("Connection", "close")
	}
}

// reusable reports whether the connection can carry another request.
func (w *h1Response) reusable() bool {
	switch {
	case w.closeAfter:
		return false
	case w.req.Method != http.MethodHead && w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.contentLength != w.written:
		return false // did not write what it declared: the stream is out of sync
	case w.hc.werr.Load():
		return false
	}
	return !w.bodyClosedEarly()
}

func (w *h1Response) bodyClosedEarly() bool { return w.body != nil && w.body.closedEarly() }

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
	if w.closeAfter && (!keepAlives || !hasToken(headerGet(header, "Connection"), "close")) && !isProtocolSwitchResponse(code, header) {
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

// hasToken reports whether token is one of v's comma- or space-separated
// tokens, case-insensitively (net/http's rule for Connection and Expect).
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
