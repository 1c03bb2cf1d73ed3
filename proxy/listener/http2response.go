package listener

import (
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/proxy/internal/h2wire"
)

// h2sResponse is the lean HTTP/2 server's http.ResponseWriter. It frames
// a response as Go's server does (a Date when the handler set none, a
// sniffed Content-Type for a body without one, a Content-Length when the
// handler returned within the first 4 KiB, trailers declared in the
// Trailer header or set with http.TrailerPrefix), and writes its frames
// itself: nothing is flushed until the handler flushes or returns, so
// a response complete by then leaves in one write.
//
// The handler's goroutine calls every method, except WriteHeader with a
// 1xx status, which the router may call from a transport goroutine while
// the handler waits for the final response.
type h2sResponse struct {
	st       *h2sStream
	req      *http.Request
	header   http.Header
	sent     http.Header // the header as of WriteHeader
	status   int
	buf      *[]byte // the body before the header goes out
	declared int64   // the handler's Content-Length, or -1
	written  int64

	wroteHeader bool
	headerSent  bool
	finished    bool
}

var (
	_ http.ResponseWriter = (*h2sResponse)(nil)
	_ http.Flusher        = (*h2sResponse)(nil)
	_ Detacher            = (*h2sResponse)(nil)
)

// Detach lets the handler return without ending its stream (Detacher).
// It is called on the handler's goroutine, before the handler returns.
func (rw *h2sResponse) Detach() (end func(abort bool)) {
	rw.st.detached = true
	return rw.st.finish
}

var h2BodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, h2BufferBeforeHeader); return &b }}

func (w *h2sResponse) init(st *h2sStream, req *http.Request) {
	w.st, w.req, w.header, w.declared = st, req, make(http.Header), -1
}

func (w *h2sResponse) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		h2BodyBuffers.Put(w.buf)
		w.buf = nil
	}
}

func (w *h2sResponse) Header() http.Header { return w.header }

func (w *h2sResponse) WriteHeader(code int) {
	if w.wroteHeader || w.finished {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		w.writeInformational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	w.sent = maps.Clone(w.header)
	if cl := w.sent["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
		delete(w.sent, "Content-Length")
	}
	if c, ok := w.sent["Connection"]; ok {
		delete(w.sent, "Connection")
		if len(c) > 0 && c[0] == "close" {
			// Go's server takes Connection: close to mean: end the
			// connection once its streams are done.
			w.st.sc.shutdown()
		}
	}
}

func (w *h2sResponse) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.finished {
		return 0, http.ErrHandlerTimeout
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.req.Method == http.MethodHead || len(p) == 0 {
		return len(p), nil
	}
	if w.headerSent {
		return len(p), w.emit(false, p, nil, false, false)
	}
	if w.buf == nil {
		w.buf = h2BodyBuffers.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
	if len(*w.buf) <= h2BufferBeforeHeader {
		return len(p), nil
	}
	return len(p), w.sendHeader(false)
}

func (w *h2sResponse) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush sends what the handler wrote.
func (w *h2sResponse) Flush() { w.FlushError() }

// FlushError sends what the handler wrote, or says why it could not.
func (w *h2sResponse) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.finished {
		return http.ErrHandlerTimeout
	}
	if !w.headerSent {
		return w.sendHeader(true)
	}
	sc := w.st.sc
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	return sc.flushLocked()
}

// EnableFullDuplex: an HTTP/2 stream always is.
func (w *h2sResponse) EnableFullDuplex() error { return nil }

// sendHeader sends the header and the body held so far.
func (w *h2sResponse) sendHeader(flush bool) error {
	w.headerSent = true
	var body []byte
	if w.buf != nil {
		body = *w.buf
	}
	err := w.emit(true, body, nil, false, flush)
	w.release()
	return err
}

// finish ends the response after the handler returned: the header (with
// a Content-Length when the body is all held), what is left of the
// body, the trailers and END_STREAM, then one flush.
func (w *h2sResponse) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	trailers := w.trailers()
	var body []byte
	if w.buf != nil {
		body = *w.buf
	}
	header := !w.headerSent
	w.headerSent, w.finished = true, true
	return w.emit(header, body, trailers, true, true)
}

// trailers returns the trailer fields: those the Trailer header declared
// that the handler set, and those set with http.TrailerPrefix.
func (w *h2sResponse) trailers() []hpack.HeaderField {
	var out []hpack.HeaderField
	add := func(k string, vv []string) {
		if !httpguts.ValidHeaderFieldName(k) {
			return
		}
		name := h2wire.Lower(k)
		if h2wire.ConnectionSpecific(name) || name == "content-length" || name == "trailer" {
			return
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				if out == nil {
					out = make([]hpack.HeaderField, 0, 4) // gRPC's status, message, details
				}
				out = append(out, hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	for _, v := range w.sent["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			add(k, w.header[k])
		}
	}
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(strings.TrimPrefix(k, http.TrailerPrefix), vv)
		}
	}
	return out
}

// emit writes, in order: the header when header is set, data as the
// send windows allow, then — when end is set — the trailers with
// END_STREAM, or END_STREAM on the last frame. Frames are written
// under the connection's write lock and flushed when flush is set, or
// before waiting for a window.
func (w *h2sResponse) emit(header bool, data []byte, trailers []hpack.HeaderField, end bool, flush bool) error {
	st, sc := w.st, w.st.sc
	bodyless := w.req.Method == http.MethodHead || !bodyAllowedForStatus(w.status)
	if bodyless {
		data, trailers = nil, nil
	}
	ended := false
	for {
		n, maxFrame, err := sc.takeWindow(st, len(data))
		if err != nil {
			return err
		}
		sc.wmu.Lock()
		if sc.werr != nil {
			err := sc.werr
			sc.wmu.Unlock()
			return err
		}
		if header {
			header = false
			ended = end && len(data) == 0 && trailers == nil
			err = w.writeHeaderLocked(ended, len(data) > 0, maxFrame)
		}
		last := n == len(data)
		for chunk := data[:n]; err == nil && len(chunk) > 0; {
			k := min(len(chunk), maxFrame)
			endData := end && trailers == nil && last && k == len(chunk)
			err = sc.wmu.AppendData(st.id, endData, chunk[:k])
			ended = ended || endData
			chunk = chunk[k:]
		}
		data = data[n:]
		if err == nil && last && end && !ended {
			if trailers != nil {
				err = writeFieldsLocked(sc, st.id, trailers, true, maxFrame)
			} else {
				err = sc.wmu.AppendData(st.id, true, nil)
			}
			ended = true
		}
		if err != nil {
			err = sc.brokenLocked(err)
			sc.wmu.Unlock()
			return err
		}
		if last {
			if flush {
				err = sc.flushLocked()
			}
			sc.wmu.Unlock()
			return err
		}
		err = sc.flushLocked()
		sc.wmu.Unlock()
		if err != nil {
			return err
		}
		if err := sc.awaitWindow(st); err != nil {
			return err
		}
	}
}

// writeHeaderLocked writes the response header. Call with wmu held.
func (w *h2sResponse) writeHeaderLocked(endStream, hasBody bool, maxFrame int) error {
	sc := w.st.sc
	h := w.sent
	var clen, ctype string
	switch {
	case w.declared >= 0:
		clen = strconv.FormatInt(w.declared, 10)
	case w.finished && bodyAllowedForStatus(w.status) && (w.written > 0 || w.req.Method != http.MethodHead):
		clen = strconv.FormatInt(w.written, 10)
	}
	if _, ok := h["Content-Type"]; !ok && hasBody && len(h["Content-Encoding"]) == 0 && bodyAllowedForStatus(w.status) && w.buf != nil && len(*w.buf) > 0 {
		ctype = http.DetectContentType(*w.buf)
	}
	fields := func(f func(name, value string)) {
		f(":status", statusText(w.status))
		for k, vv := range h {
			name := h2wire.Lower(k)
			if h2wire.ConnectionSpecific(name) || !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			for _, v := range vv {
				if httpguts.ValidHeaderFieldValue(v) {
					f(name, v)
				}
			}
		}
		if clen != "" {
			f("content-length", clen)
		}
		if ctype != "" {
			f("content-type", ctype)
		}
		if _, ok := h["Date"]; !ok {
			f("date", h2Date())
		}
	}
	return writeBlockLocked(sc, w.st.id, fields, endStream, maxFrame)
}

// writeInformational sends a 1xx response with the handler's header as
// it stands, at once.
func (w *h2sResponse) writeInformational(code int) {
	sc := w.st.sc
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	if sc.werr != nil {
		return
	}
	err := writeBlockLocked(sc, w.st.id, func(f func(name, value string)) {
		f(":status", statusText(code))
		for k, vv := range w.header {
			name := h2wire.Lower(k)
			if h2wire.ConnectionSpecific(name) || !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			for _, v := range vv {
				if httpguts.ValidHeaderFieldValue(v) {
					f(name, v)
				}
			}
		}
	}, false, int(sc.peerMaxFrameLocked()))
	if err == nil {
		err = sc.flushLocked()
	}
	if err != nil {
		sc.brokenLocked(err)
	}
}

func writeFieldsLocked(sc *h2sConn, id uint32, fields []hpack.HeaderField, end bool, maxFrame int) error {
	return writeBlockLocked(sc, id, func(f func(name, value string)) {
		for _, hf := range fields {
			f(hf.Name, hf.Value)
		}
	}, end, maxFrame)
}

// writeBlockLocked encodes the fields visit gives and writes them as
// HEADERS and, past maxFrame bytes, CONTINUATION frames. Call with wmu
// held: the encoder's table changes in the order blocks go out.
func writeBlockLocked(sc *h2sConn, id uint32, visit func(func(name, value string)), end bool, maxFrame int) error {
	sc.hbuf.Reset()
	visit(func(name, value string) { sc.henc.WriteField(h2wire.Field(name, value)) })
	block := sc.hbuf.Bytes()
	n := min(len(block), maxFrame)
	if err := sc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:n], EndStream: end, EndHeaders: n == len(block)}); err != nil {
		return err
	}
	for block = block[n:]; len(block) > 0; {
		n = min(len(block), maxFrame)
		if err := sc.fr.WriteContinuation(id, n == len(block), block[:n]); err != nil {
			return err
		}
		block = block[n:]
	}
	return nil
}

// takeWindow takes up to want bytes of the stream's and the connection's
// send windows, without waiting; it fails once the stream was reset or
// the connection ended.
func (sc *h2sConn) takeWindow(st *h2sStream, want int) (n, maxFrame int, err error) {
	if err := st.writeErr(); err != nil {
		return 0, 0, err
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closed {
		return 0, 0, errH2ConnGone
	}
	n = max(0, min(want, int(st.sendAvail), int(sc.sendWin)))
	st.sendAvail -= int32(n)
	sc.sendWin -= int32(n)
	return n, int(sc.peerMaxFrame), nil
}

// awaitWindow waits until the stream and the connection may send.
func (sc *h2sConn) awaitWindow(st *h2sStream) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for (st.sendAvail <= 0 || sc.sendWin <= 0) && !sc.closed {
		if err := st.writeErr(); err != nil {
			return err
		}
		sc.winCond.Wait()
	}
	if sc.closed {
		return errH2ConnGone
	}
	return nil
}

func (sc *h2sConn) peerMaxFrameLocked() uint32 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.peerMaxFrame
}

// writeErr is why the response can no longer be written: the stream was
// reset, or the connection ended.
func (st *h2sStream) writeErr() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil && st.err != http.ErrBodyReadAfterClose && st.err != errH2BadLength {
		return st.err
	}
	return nil
}

func statusText(code int) string {
	if code >= 100 && code < 1000 {
		return statusCodes[code]
	}
	return strconv.Itoa(code)
}

var statusCodes = func() (s [1000]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// h2Date is the Date of responses, formatted once a second.
func h2Date() string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &cachedDate{unix: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	unix int64
	text string
}

var dateCache atomic.Pointer[cachedDate]
