package listener

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/weft-mesh/weft/internal/httptoken"
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
	w.wantsClose = r.Close || httptoken.Contains(headerGet(r.Header, "Connection"), "close")
	w.wants10Alive = r.ProtoMajor == 1 && r.ProtoMinor == 0 && httptoken.Contains(headerGet(r.Header, "Connection"), "keep-alive")
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
	if httptoken.Contains(expect, "100-continue") {
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
