package cluster

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http2"

	"github.com/weft-mesh/weft/proxy/internal/h2wire"
)

// readLoop reads the server's frames until the connection ends, handing
// each to its stream.
func (cc *h2Conn) readLoop() {
	var err error
	for {
		var f http2.Frame
		if f, err = cc.fr.ReadFrame(); err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				if st := cc.stream(se.StreamID); st != nil {
					cc.resetStream(st, se.Code, se)
				}
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				err = cc.connError(http2.ErrCode(ce), err.Error())
			}
			break
		}
		if err = cc.handle(f); err != nil {
			break
		}
		if len(cc.pending) > 0 && !h2wire.NextFrameBuffered(cc.br) {
			cc.deliverPending()
		}
	}
	cc.deliverPending()
	cc.fail(err)
}

// deliverPending hands the responses whose header was read to their
// callers.
func (cc *h2Conn) deliverPending() {
	for i, st := range cc.pending {
		st.deliver(st.resp, nil)
		cc.pending[i] = nil
	}
	cc.pending = cc.pending[:0]
}

func (cc *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return cc.onHeaders(f)
	case *http2.DataFrame:
		return cc.onData(f)
	case *http2.RSTStreamFrame:
		if st, err := cc.lookup(f.StreamID); err != nil || st == nil {
			return err
		} else {
			code := f.ErrCode
			var err error = http2.StreamError{StreamID: f.StreamID, Code: code}
			if code == http2.ErrCodeRefusedStream {
				err = &notProcessed{err: err}
			}
			st.abort(err)
			cc.remove(st)
		}
	case *http2.SettingsFrame:
		return cc.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			cc.writeFrames(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
		}
	case *http2.GoAwayFrame:
		cc.onGoAway(f)
	case *http2.WindowUpdateFrame:
		return cc.onWindowUpdate(f)
	case *http2.PushPromiseFrame:
		return cc.connError(http2.ErrCodeProtocol, "PUSH_PROMISE, though the client disabled push")
	}
	return nil
}

// stream returns the open stream id, or nil.
func (cc *h2Conn) stream(id uint32) *h2Stream {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.streams[id]
}

// lookup returns the open stream id: nil for one that ended, a
// connection error for one the client never opened (RFC 9113 §5.1).
func (cc *h2Conn) lookup(id uint32) (*h2Stream, error) {
	cc.mu.Lock()
	st, next := cc.streams[id], cc.nextID
	cc.mu.Unlock()
	if st == nil && (id%2 == 0 || id >= next) {
		return nil, cc.connError(http2.ErrCodeProtocol, fmt.Sprintf("frame on stream %d, which the client did not open", id))
	}
	return st, nil
}

func (cc *h2Conn) onHeaders(f *http2.MetaHeadersFrame) error {
	st, err := cc.lookup(f.StreamID)
	if err != nil || st == nil {
		return err
	}
	if f.Truncated {
		cc.resetStream(st, http2.ErrCodeProtocol, fmt.Errorf("http2: response header list larger than %d bytes", maxResponseHeaderBytes))
		return nil
	}
	if st.final {
		return cc.onTrailers(st, f)
	}
	resp, err := st.response(f)
	if err != nil {
		cc.resetStream(st, http2.ErrCodeProtocol, err)
		return nil
	}
	if resp == nil { // 1xx
		return nil
	}
	st.final = true
	st.mu.Lock()
	st.resp = resp
	st.mu.Unlock()
	cc.pending = append(cc.pending, st)
	if f.StreamEnded() {
		cc.recvFinished(st)
	}
	return nil
}

func (cc *h2Conn) onTrailers(st *h2Stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		cc.resetStream(st, http2.ErrCodeProtocol, errors.New("http2: trailers without END_STREAM"))
		return nil
	}
	if len(f.PseudoFields()) > 0 {
		cc.resetStream(st, http2.ErrCodeProtocol, errors.New("http2: trailers with a pseudo-header field"))
		return nil
	}
	trailer := h2wire.Header(f.RegularFields())
	st.mu.Lock()
	st.trailer = trailer
	st.eof = true
	st.cond.Broadcast()
	st.mu.Unlock()
	cc.recvFinished(st)
	return nil
}

// response makes the response of a final header block; a 1xx one is
// reported to the request's trace (httptrace.ClientTrace.Got1xxResponse)
// and gives nil. The fields mean what they mean to http.Transport.
func (st *h2Stream) response(f *http2.MetaHeadersFrame) (*http.Response, error) {
	status := f.PseudoValue("status")
	if status == "" {
		return nil, errors.New("http2: malformed response: no :status")
	}
	code, err := strconv.Atoi(status)
	if err != nil || len(status) != 3 {
		return nil, fmt.Errorf("http2: malformed response: :status %q", status)
	}
	regular := f.RegularFields()
	header := make(http.Header, len(regular))
	vs := h2wire.NewValues(len(regular))
	var trailer http.Header
	for _, hf := range regular {
		k := h2wire.Canonical(hf.Name)
		if k == "Trailer" {
			if trailer == nil {
				trailer = make(http.Header)
			}
			for v := range strings.SplitSeq(hf.Value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					trailer[textproto.CanonicalMIMEHeaderKey(v)] = nil
				}
			}
			continue
		}
		vs.Add(header, k, hf.Value)
	}
	if code >= 100 && code <= 199 {
		return nil, st.informational(f, code, header)
	}
	resp := &http.Response{
		Status:        status + " " + http.StatusText(code),
		StatusCode:    code,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        header,
		Trailer:       trailer,
		ContentLength: -1,
		Request:       st.req,
		TLS:           st.cc.tls,
	}
	if cl := header["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseUint(cl[0], 10, 63); err == nil {
			resp.ContentLength = int64(n)
		}
	} else if len(cl) == 0 && f.StreamEnded() && st.req.Method != http.MethodHead {
		resp.ContentLength = 0
	}
	switch {
	case st.req.Method == http.MethodHead:
		resp.Body = http.NoBody
	case f.StreamEnded() && resp.ContentLength > 0:
		resp.Body = missingBody{}
	case f.StreamEnded():
		resp.Body = http.NoBody
	default:
		resp.Body = st
	}
	return resp, nil
}

// informational handles a 1xx response.
func (st *h2Stream) informational(f *http2.MetaHeadersFrame, code int, header http.Header) error {
	if f.StreamEnded() {
		return errors.New("http2: 1xx response with END_STREAM")
	}
	if code == http.StatusSwitchingProtocols {
		return errors.New("http2: 101 Switching Protocols, which HTTP/2 does not have")
	}
	if st.num1xx++; st.num1xx > max1xxResponses {
		return errors.New("http2: too many 1xx informational responses")
	}
	if trace := httptrace.ContextClientTrace(st.req.Context()); trace != nil && trace.Got1xxResponse != nil {
		return trace.Got1xxResponse(code, textproto.MIMEHeader(header))
	}
	return nil
}

// missingBody is the body of a response whose Content-Length promised
// bytes its END_STREAM withheld.
type missingBody struct{}

func (missingBody) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
func (missingBody) Close() error             { return nil }

func (cc *h2Conn) onData(f *http2.DataFrame) error {
	n := int32(f.Length)
	cc.mu.Lock()
	if !cc.inflow.Take(n) {
		cc.mu.Unlock()
		return cc.connError(http2.ErrCodeFlowControl, "DATA beyond the connection window")
	}
	cc.mu.Unlock()
	st, err := cc.lookup(f.StreamID)
	if err != nil {
		return err
	}
	if st == nil { // a stream the client ended: only the connection window counts
		cc.consumed(f.StreamID, int(n), 0)
		return nil
	}
	data := f.Data()
	if pad := int(n) - len(data); pad > 0 {
		cc.consumed(f.StreamID, pad, 0)
	}
	kept, err := st.receive(data, n, f.StreamEnded())
	if !kept {
		cc.consumed(f.StreamID, len(data), 0)
	}
	if err != nil {
		cc.resetStream(st, err.(http2.StreamError).Code, err)
		return nil
	}
	if f.StreamEnded() {
		cc.recvFinished(st)
	}
	return nil
}

func (cc *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	tableSet := false
	cc.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxFrameSize:
			cc.peerMaxFrame = s.Val
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams.Store(int32(min(s.Val, math.MaxInt32)))
		case http2.SettingMaxHeaderListSize:
			cc.peerMaxHeaderList = uint64(s.Val)
		case http2.SettingHeaderTableSize:
			tableSize, tableSet = s.Val, true
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(cc.peerInitWin)
			for _, st := range cc.streams {
				if int64(st.sendAvail)+delta > math.MaxInt32 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.sendAvail += int32(delta)
			}
			cc.peerInitWin = int32(s.Val)
			cc.winCond.Broadcast()
		}
		return nil
	})
	cc.mu.Unlock()
	if err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return cc.connError(http2.ErrCode(ce), "invalid SETTINGS: "+err.Error())
		}
		return err
	}
	return cc.writeFrames(func(fr *http2.Framer) error {
		if tableSet {
			cc.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return fr.WriteSettingsAck()
	})
}

func (cc *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if f.StreamID == 0 {
		if int64(cc.sendWin)+int64(f.Increment) > math.MaxInt32 {
			cc.mu.Unlock()
			err := cc.connError(http2.ErrCodeFlowControl, "connection window above 2^31-1")
			cc.mu.Lock()
			return err
		}
		cc.sendWin += int32(f.Increment)
		cc.winCond.Broadcast()
		return nil
	}
	st := cc.streams[f.StreamID]
	if st == nil {
		return nil
	}
	if int64(st.sendAvail)+int64(f.Increment) > math.MaxInt32 {
		cc.mu.Unlock()
		cc.resetStream(st, http2.ErrCodeFlowControl, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeFlowControl, Cause: errors.New("stream window above 2^31-1")})
		cc.mu.Lock()
		return nil
	}
	st.sendAvail += int32(f.Increment)
	cc.winCond.Broadcast()
	return nil
}

// onGoAway stops new streams on the connection. Streams above the last
// one the server says it processed end as not processed; the others go
// on, and the connection closes after the last.
func (cc *h2Conn) onGoAway(f *http2.GoAwayFrame) {
	cc.unusable.Store(true)
	cc.pool.remove(cc)
	cc.mu.Lock()
	var unprocessed []*h2Stream
	for id, st := range cc.streams {
		if id > f.LastStreamID {
			unprocessed = append(unprocessed, st)
		}
	}
	cc.mu.Unlock()
	for _, st := range unprocessed {
		st.abort(&notProcessed{err: fmt.Errorf("http2: server sent GOAWAY (%v) below stream %d", f.ErrCode, st.id)})
		cc.remove(st)
	}
	if cc.reserved.Load() == 0 {
		cc.close()
	}
}
