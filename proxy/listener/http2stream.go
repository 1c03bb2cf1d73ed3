package listener

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"

	"github.com/weft-mesh/weft/proxy/internal/h2wire"
)

// h2sStream is one request on an h2sConn: its body, as the handler reads
// it, and its response writer.
type h2sStream struct {
	sc     *h2sConn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc
	rw     h2sResponse

	// Guarded by sc.mu.
	sendAvail int32
	removed   bool

	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte
	off      int
	eof      bool  // END_STREAM received
	err      error // the stream was reset, or the connection ended
	closed   bool  // the handler closed the body
	declared int64 // the request's Content-Length, or -1
	got      int64
	inflow   h2wire.Inflow // the stream's receive window
	trailer  http.Header   // received trailers, moved to req.Trailer at EOF
	req      *http.Request

	// notify, when set (OnReady), is called whenever the body has more
	// to give: data, its end or an error.
	notify atomic.Pointer[func()]
	// detached is set by the handler's goroutine (Detach): the stream
	// outlives the handler's return, and ends when finish is called.
	detached bool
	finished sync.Once
}

// onHeaders opens a stream for a request's header block, or takes the
// trailers of an open one.
func (sc *h2sConn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	sc.progress.Add(1)
	if id%2 == 0 {
		return connErr(http2.ErrCodeProtocol, "HEADERS on even stream %d", id)
	}
	sc.mu.Lock()
	if st := sc.streams[id]; st != nil {
		sc.mu.Unlock()
		return st.onTrailers(f)
	}
	if id <= sc.lastID {
		sc.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "HEADERS on closed stream %d", id)
	}
	sc.lastID = id
	switch {
	case sc.goAway: // streams after GOAWAY are not served (RFC 9113 §6.8)
		sc.mu.Unlock()
		return nil
	case sc.running >= sc.s.maxStreams:
		sc.mu.Unlock()
		sc.resetStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	sc.mu.Unlock()

	var handler http.Handler = sc.s.handler
	req, err := sc.newRequest(f)
	if err != nil {
		sc.s.log.Debug("HTTP/2 request refused", "remote", sc.remote, "stream", id, "error", err)
		sc.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	if f.Truncated {
		handler = http.HandlerFunc(headerListTooLong)
	}
	st := &h2sStream{sc: sc, id: id, declared: req.ContentLength, inflow: h2wire.NewInflow(sc.s.streamWindow), req: req}
	st.cond.L = &st.mu
	st.ctx, st.cancel = context.WithCancel(sc.ctx)
	req = req.WithContext(st.ctx)
	st.req = req
	if f.StreamEnded() {
		st.eof = true
		req.Body = http.NoBody
	} else {
		req.Body = st
	}
	st.rw.init(st, req)

	sc.mu.Lock()
	st.sendAvail = sc.peerInitWin
	sc.streams[id] = st
	sc.running++
	if sc.idle != nil {
		sc.idle.Stop()
	}
	sc.mu.Unlock()
	sc.handlers.Add(1)
	sc.pending = append(sc.pending, pendingStream{st: st, handler: handler})
	return nil
}

// headerListTooLong answers a request whose header block passed the
// read bound, as Go's HTTP/2 server does.
func headerListTooLong(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	io.WriteString(w, "<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>")
}

var (
	errH2Malformed = errors.New("http2: malformed request")
	errH2BadLength = errors.New("http2: request body length differs from its Content-Length")
)

// newRequest makes the request of a header block, refusing what RFC 9113
// §8.2 and §8.3 call malformed: a connection-specific field, TE other
// than "trailers", missing or unknown pseudo-headers, a bad path or
// Content-Length. The fields mean what they mean to Go's server.
func (sc *h2sConn) newRequest(f *http2.MetaHeadersFrame) (*http.Request, error) {
	method, path := f.PseudoValue("method"), f.PseudoValue("path")
	scheme, authority := f.PseudoValue("scheme"), f.PseudoValue("authority")
	if f.PseudoValue("protocol") != "" {
		return nil, errors.New("http2: :protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL")
	}
	connect := method == http.MethodConnect
	if connect {
		if path != "" || scheme != "" || authority == "" {
			return nil, errors.New("http2: CONNECT with :path or :scheme, or without :authority")
		}
	} else if method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return nil, errors.New("http2: missing :method or :path, or :scheme neither http nor https")
	}
	regular := f.RegularFields()
	header := make(http.Header, len(regular))
	vs := h2wire.NewValues(len(regular))
	var cookies []string
	for _, hf := range regular {
		if h2wire.ConnectionSpecific(hf.Name) {
			return nil, errors.New("http2: connection-specific field " + hf.Name)
		}
		if hf.Name == "te" && hf.Value != "trailers" {
			return nil, errors.New("http2: TE other than trailers")
		}
		if hf.Name == "cookie" {
			cookies = append(cookies, hf.Value)
			continue
		}
		vs.Add(header, h2wire.Canonical(hf.Name), hf.Value)
	}
	if len(cookies) > 0 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for key := range strings.SplitSeq(v, ",") {
			switch key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key)); key {
			case "Transfer-Encoding", "Trailer", "Content-Length", "":
			default:
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[key] = nil
			}
		}
	}
	delete(header, "Trailer")

	contentLength := int64(-1)
	if f.StreamEnded() {
		contentLength = 0
	}
	if cl := header["Content-Length"]; len(cl) > 0 {
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return nil, errH2BadLength
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, errH2BadLength
			}
		}
		if f.StreamEnded() && n != 0 {
			return nil, errH2BadLength
		}
		contentLength = int64(n)
	}

	u := &url.URL{Host: authority}
	requestURI := path
	if connect {
		requestURI = authority
	} else {
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, errH2Malformed
		}
	}
	return &http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        header,
		ContentLength: contentLength,
		Host:          authority,
		RemoteAddr:    sc.remote,
		RequestURI:    requestURI,
		TLS:           sc.tls,
		Trailer:       trailer,
	}, nil
}

// run runs the handler and ends the stream: its response's end, or a
// reset when the handler panicked. A stream the handler detached ends
// when the handler's end function says.
func (st *h2sStream) run(h http.Handler) {
	sc := st.sc
	panicked := true
	defer func() {
		if panicked {
			if e := recover(); e != nil && e != http.ErrAbortHandler {
				buf := make([]byte, 16<<10)
				buf = buf[:goruntime.Stack(buf, false)]
				sc.s.log.Error("HTTP/2 handler panicked", "remote", sc.remote, "panic", e, "stack", string(buf))
			}
		}
		if panicked || !st.detached {
			st.finish(panicked)
		}
	}()
	h.ServeHTTP(&st.rw, st.req)
	panicked = false
}

// finish ends the stream once (end), and counts its handler done.
func (st *h2sStream) finish(abort bool) {
	st.finished.Do(func() {
		st.end(abort)
		st.sc.handlers.Done()
	})
}

// end finishes the stream after its handler: the rest of the response,
// or RST_STREAM (INTERNAL_ERROR) after a panic; a request whose body
// the client is still sending is then reset (NO_ERROR, RFC 9113 §8.1).
func (st *h2sStream) end(panicked bool) {
	sc := st.sc
	st.mu.Lock()
	reset, received := st.err != nil, st.eof
	st.mu.Unlock()
	switch {
	case reset:
	case panicked:
		sc.resetStream(st.id, http2.ErrCodeInternal)
	default:
		if err := st.rw.finish(); err == nil && !received {
			sc.resetStream(st.id, http2.ErrCodeNo)
		}
	}
	st.cancel()
	st.rw.release()
	st.mu.Lock()
	left := len(st.buf) - st.off
	st.buf, st.off, st.closed = nil, 0, true
	if st.err == nil {
		st.err = errH2StreamDone
	}
	st.mu.Unlock()
	sc.consumed(left, 0, 0)

	sc.mu.Lock()
	st.removed = true
	delete(sc.streams, st.id)
	sc.running--
	idle, goAway := sc.running == 0, sc.goAway
	if idle && sc.idle != nil && !goAway {
		sc.idle.Reset(sc.s.idleTimeout)
	}
	sc.winCond.Broadcast()
	sc.mu.Unlock()
	if idle && goAway {
		sc.closeWhenWritten()
	}
}

var errH2StreamDone = errors.New("http2: the stream's handler returned")

// reset ends the stream early with err: the body's reads and the
// response's writes fail, and the handler's context is cancelled.
func (st *h2sStream) reset(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.cond.Broadcast()
	st.mu.Unlock()
	st.cancel()
	sc := st.sc
	sc.mu.Lock()
	sc.winCond.Broadcast()
	sc.mu.Unlock()
	st.notifyReady()
}

// onData takes a DATA frame: flow control first, for the connection
// whatever happens to the stream.
func (sc *h2sConn) onData(f *http2.DataFrame) error {
	n := int32(f.Length)
	sc.mu.Lock()
	if !sc.inflow.Take(n) {
		sc.mu.Unlock()
		return connErr(http2.ErrCodeFlowControl, "DATA beyond the connection window")
	}
	st := sc.streams[f.StreamID]
	idle := st == nil && (f.StreamID > sc.lastID || f.StreamID == 0)
	sc.mu.Unlock()
	if idle {
		return connErr(http2.ErrCodeProtocol, "DATA on idle stream %d", f.StreamID)
	}
	data := f.Data()
	if len(data) > 0 {
		sc.progress.Add(1)
	}
	if st == nil {
		sc.consumed(int(n), 0, 0)
		sc.resetStream(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	}
	if pad := int(n) - len(data); pad > 0 {
		sc.consumed(pad, 0, 0)
	}
	kept, code := st.receive(data, n, f.StreamEnded())
	if !kept {
		sc.consumed(len(data), 0, 0)
	}
	if code != http2.ErrCodeNo {
		st.reset(http2.StreamError{StreamID: st.id, Code: code})
		sc.resetStream(st.id, code)
	} else if kept || f.StreamEnded() {
		st.notifyReady()
	}
	return nil
}

// receive adds a DATA frame's payload to the body; it reports whether
// the body kept it, and the stream error it makes, if any.
func (st *h2sStream) receive(data []byte, n int32, end bool) (bool, http2.ErrCode) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.err != nil && st.closed:
		return false, http2.ErrCodeNo
	case st.eof:
		return false, http2.ErrCodeStreamClosed
	case !st.inflow.Take(n):
		return false, http2.ErrCodeFlowControl
	}
	st.got += int64(len(data))
	if st.declared >= 0 && (st.got > st.declared || end && st.got != st.declared) {
		st.err = errH2BadLength
		st.cond.Broadcast()
		return false, http2.ErrCodeProtocol
	}
	st.eof = end
	if st.closed || st.err != nil {
		return false, http2.ErrCodeNo
	}
	st.buf = append(st.buf, data...)
	st.cond.Broadcast()
	return true, http2.ErrCodeNo
}

// onTrailers takes the request's trailers, which end it.
func (st *h2sStream) onTrailers(f *http2.MetaHeadersFrame) error {
	sc := st.sc
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		st.reset(http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol})
		sc.resetStream(st.id, http2.ErrCodeProtocol)
		return nil
	}
	trailer := h2wire.Header(f.RegularFields())
	st.mu.Lock()
	if st.eof {
		st.mu.Unlock()
		return connErr(http2.ErrCodeStreamClosed, "HEADERS after END_STREAM on stream %d", st.id)
	}
	if st.declared >= 0 && st.got != st.declared {
		st.err = errH2BadLength
	}
	st.trailer, st.eof = trailer, true
	st.cond.Broadcast()
	st.mu.Unlock()
	st.notifyReady()
	return nil
}

// Read reads the request body: what arrived, then io.EOF (with the
// trailers in the request's Trailer), or the error that ended the
// stream.
func (st *h2sStream) Read(p []byte) (int, error) {
	st.mu.Lock()
	for st.off == len(st.buf) && !st.eof && st.err == nil {
		st.cond.Wait()
	}
	if st.off < len(st.buf) {
		n := copy(p, st.buf[st.off:])
		st.off += n
		if st.off == len(st.buf) {
			st.buf, st.off = st.buf[:0], 0
		}
		var inc uint32
		if !st.eof {
			inc = st.inflow.Consumed(n)
		}
		st.mu.Unlock()
		st.sc.consumed(n, st.id, inc)
		return n, nil
	}
	if st.err != nil {
		err := st.err
		st.mu.Unlock()
		return 0, err
	}
	for k, vv := range st.trailer {
		if st.req.Trailer == nil {
			st.req.Trailer = make(http.Header, len(st.trailer))
		}
		st.req.Trailer[k] = vv
	}
	st.trailer = nil
	st.mu.Unlock()
	return 0, io.EOF
}

// Ready reports what a Read would give without blocking (ready.Reporter).
func (st *h2sStream) Ready() (int, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.buf) - st.off, st.eof || st.err != nil
}

// Close stops the body: what arrived and what arrives later is dropped,
// its flow-control credit given back.
func (st *h2sStream) Close() error {
	st.mu.Lock()
	left := len(st.buf) - st.off
	st.buf, st.off, st.closed = nil, 0, true
	if st.err == nil && !st.eof {
		st.err = http.ErrBodyReadAfterClose
	}
	st.mu.Unlock()
	st.sc.consumed(left, 0, 0)
	return nil
}

// consumed gives n bytes back to the connection's receive window, with a
// WINDOW_UPDATE once half of it is out, and streamInc to stream id's.
func (sc *h2sConn) consumed(n int, id uint32, streamInc uint32) {
	var connInc uint32
	if n > 0 {
		sc.mu.Lock()
		connInc = sc.inflow.Consumed(n)
		sc.mu.Unlock()
	}
	if connInc == 0 && streamInc == 0 {
		return
	}
	sc.writeFrames(func(fr *http2.Framer) error {
		if connInc > 0 {
			if err := fr.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return fr.WriteWindowUpdate(id, streamInc)
		}
		return nil
	})
}
