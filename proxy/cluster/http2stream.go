package cluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"golang.org/x/net/http2"

	"github.com/weft-mesh/weft/proxy/internal/h2wire"
	"github.com/weft-mesh/weft/proxy/internal/ready"
)

// h2Stream is one request and its response on an h2Conn. It is the
// response body too.
type h2Stream struct {
	cc  *h2Conn
	id  uint32
	req *http.Request
	// ready is closed once the final response or an error is known.
	ready chan struct{}
	// stopCancel stops the request context's cancellation of the stream.
	stopCancel func() bool

	// Of the reader goroutine only: whether the final response arrived,
	// and the 1xx responses before it.
	final  bool
	num1xx int

	// Guarded by cc.mu.
	removed     bool  // no longer on the connection
	sendDone    bool  // the request was sent whole
	recvDone    bool  // the response ended (END_STREAM)
	sendStopped bool  // the body writer must stop
	sendAvail   int32 // the stream's send window

	mu        sync.Mutex
	cond      sync.Cond
	delivered bool
	gotResp   bool // the round trip got resp, not an error
	resp      *http.Response
	err       error // why the stream ended early, once set
	buf       []byte
	off       int
	got       int64 // body bytes received
	eof       bool  // END_STREAM received
	closed    bool  // the caller closed the body
	trailer   http.Header
	inflow    h2wire.Inflow // the stream's receive window
}

var _ io.ReadCloser = (*h2Stream)(nil)

// deliver hands the round trip its response or error, once.
func (st *h2Stream) deliver(resp *http.Response, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.delivered {
		return
	}
	st.delivered = true
	st.resp, st.err = resp, err
	st.gotResp = resp != nil && err == nil
	close(st.ready)
}

// abort ends the stream with err: the round trip, if it still waits, and
// the body's reads, once the data before it is read.
func (st *h2Stream) abort(err error) {
	st.mu.Lock()
	if st.err == nil && !st.eof {
		st.err = err
	}
	if !st.delivered {
		st.delivered = true
		st.err = err
		close(st.ready)
	}
	st.cond.Broadcast()
	st.mu.Unlock()
}

// failure is the error the stream was ended with (abort), nil if none.
func (st *h2Stream) failure() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

// receive adds a DATA frame's payload (n bytes against the windows,
// padding included) to the body.
// It reports whether the body kept the data: a closed one drops it.
func (st *h2Stream) receive(data []byte, n int32, end bool) (bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case !st.final:
		return false, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("DATA before the response header")}
	case !st.inflow.Take(n):
		return false, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeFlowControl, Cause: errors.New("DATA beyond the stream window")}
	}
	st.got += int64(len(data))
	if cl := st.resp.ContentLength; cl >= 0 && (st.got > cl || end && st.got != cl) {
		return false, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("response body length differs from its Content-Length")}
	}
	st.eof = st.eof || end
	if st.closed {
		return false, nil
	}
	st.buf = append(st.buf, data...)
	st.cond.Broadcast()
	return true, nil
}

// Read reads the response body: the data received, then io.EOF (with the
// trailers in resp.Trailer) or the error that ended the stream.
func (st *h2Stream) Read(p []byte) (int, error) {
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
		st.cc.consumed(st.id, n, inc)
		return n, nil
	}
	if st.eof {
		if len(st.trailer) > 0 {
			if st.resp.Trailer == nil {
				st.resp.Trailer = make(http.Header, len(st.trailer))
			}
			for k, vv := range st.trailer {
				st.resp.Trailer[k] = vv
			}
			st.trailer = nil
		}
		st.mu.Unlock()
		st.stopCancel()
		return 0, io.EOF
	}
	err := st.err
	st.mu.Unlock()
	return 0, err
}

// Ready reports, without blocking, how many body bytes a Read would give
// and whether the body's end has arrived (ready.go).
func (st *h2Stream) Ready() (buffered int, end bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.buf) - st.off, st.eof || st.err != nil
}

// Close ends the body. Before its end it resets the stream (CANCEL); the
// data received but not read goes back to the connection window.
func (st *h2Stream) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	ended := st.eof
	if st.err == nil && !ended {
		st.err = errH2BodyClosed
	}
	left := len(st.buf) - st.off
	st.buf, st.off = nil, 0
	st.cond.Broadcast()
	st.mu.Unlock()
	st.stopCancel()
	st.cc.consumed(st.id, left, 0)
	if !ended {
		st.cc.resetStream(st, http2.ErrCodeCancel, errH2BodyClosed)
	}
	return nil
}

// roundTrip writes req on a new stream and waits for its response. The
// caller holds a stream slot, which the stream gives back when it ends.
func (cc *h2Conn) roundTrip(req *http.Request) (*http.Response, error) {
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	hdr, err := newH2RequestHeader(req, body != nil)
	if err != nil {
		cc.release()
		closeBody(req)
		return nil, err
	}
	var inline []byte
	if body != nil && len(req.Trailer) == 0 {
		if inline, err = readInline(body, req.ContentLength); err != nil {
			cc.release()
			closeBody(req)
			return nil, err
		}
	}
	st := &h2Stream{cc: cc, req: req, ready: make(chan struct{}), inflow: h2wire.NewInflow(h2StreamWindow)}
	st.cond.L = &st.mu
	st.stopCancel = noStop
	inlined, err := cc.start(st, hdr, body, inline)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if ctx := req.Context(); ctx.Done() != nil {
		st.stopCancel = context.AfterFunc(ctx, func() { cc.resetStream(st, http2.ErrCodeCancel, context.Cause(ctx)) })
	}
	if body != nil && !inlined {
		go cc.writeBody(st, body, inline)
	} else {
		closeBody(req)
		cc.sendFinished(st)
	}
	<-st.ready
	st.mu.Lock()
	resp, err, ok := st.resp, st.err, st.gotResp
	st.mu.Unlock()
	if !ok {
		st.stopCancel()
		return nil, err
	}
	if resp.Body != st {
		st.stopCancel()
	}
	return resp, nil
}

func noStop() bool { return false }

// readInline reads a body that is complete or declared small, to send it
// with the header in one write: a body whose end has arrived (ready.go),
// or one of Content-Length up to maxInlineBody. It returns nil for other
// bodies, which are sent as they arrive.
func readInline(body io.Reader, contentLength int64) ([]byte, error) {
	n, end := ready.Of(body)
	if !end && (contentLength <= 0 || contentLength > maxInlineBody) {
		return nil, nil
	}
	if end {
		contentLength = int64(n)
	}
	buf := make([]byte, contentLength, contentLength+1)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// start opens the stream and writes its header, with the body and
// END_STREAM when inline holds all of it and the windows allow; it
// reports whether they did. A header without its body is left
// unflushed, for the body writer (writeBody).
func (cc *h2Conn) start(st *h2Stream, hdr *h2RequestHeader, body io.Reader, inline []byte) (bool, error) {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.mu.Lock()
	if cc.err != nil || cc.werr != nil || cc.nextID > 1<<31-1 {
		cc.unusable.Store(true)
		cc.mu.Unlock()
		cc.release()
		return false, &notProcessed{err: errH2ConnClosed}
	}
	if hdr.listSize > cc.peerMaxHeaderList {
		cc.mu.Unlock()
		cc.release()
		return false, errH2HeaderList
	}
	// A slot reserved before the server's SETTINGS arrived may be past
	// the limit they set: opening the stream would be the client's
	// protocol error (RFC 9113 section 5.1.2), so it is sent elsewhere.
	if int32(len(cc.streams)) >= cc.maxStreams.Load() {
		cc.mu.Unlock()
		cc.release()
		return false, &notProcessed{err: errH2StreamLimit}
	}
	st.id = cc.nextID
	cc.nextID += 2
	st.sendAvail = cc.peerInitWin
	cc.streams[st.id] = st
	maxFrame := int(cc.peerMaxFrame)
	inlined := body == nil
	if !inlined && inline != nil && int32(len(inline)) <= st.sendAvail && int32(len(inline)) <= cc.sendWin {
		st.sendAvail -= int32(len(inline))
		cc.sendWin -= int32(len(inline))
		inlined = true
	}
	// An inlined request is sent whole by the write below, before the
	// response can end the stream: without this, a response read before
	// roundTrip calls sendFinished would cut short a request already sent,
	// with a needless RST_STREAM.
	st.sendDone = inlined
	cc.mu.Unlock()

	err := cc.writeHeaderLocked(st.id, hdr, body == nil, maxFrame)
	if err == nil && body != nil && inlined {
		err = writeDataFrames(cc.fr, st.id, inline, true, maxFrame)
	}
	if err == nil && inlined {
		err = cc.flushLocked()
	} else if err != nil && cc.werr == nil {
		cc.werr = err
		go cc.close()
	}
	if err != nil {
		// The reader may have ended the stream first, for the reason the
		// write failed: a GOAWAY that leaves it unprocessed (retried), or
		// the server's protocol violation it closed the connection for.
		st.abort(cc.lost(err))
		cc.remove(st)
		return false, st.failure()
	}
	return inlined, nil
}

// writeDataFrames writes data in frames of at most maxFrame bytes, the
// last with END_STREAM when end is set.
func writeDataFrames(fr *http2.Framer, id uint32, data []byte, end bool, maxFrame int) error {
	for {
		n := min(len(data), maxFrame)
		last := n == len(data)
		if err := fr.WriteData(id, end && last, data[:n]); err != nil {
			return err
		}
		if last {
			return nil
		}
		data = data[n:]
	}
}

// writeBody sends a body that arrives after the header, as the windows
// allow, then END_STREAM or the request's trailers; inline is what was
// read of it already. A read error resets the stream (CANCEL).
func (cc *h2Conn) writeBody(st *h2Stream, body io.Reader, inline []byte) {
	defer closeBody(st.req)
	trailers := len(st.req.Trailer) > 0
	err := cc.sendData(st, inline, false)
	bp := getH2Buffer()
	defer putH2Buffer(bp)
	// The header waits unflushed (start) for the body's first data, so
	// that a message that arrives while this goroutine starts goes out
	// with it; before a read that may block, it goes alone.
	if n, end := ready.Of(body); err == nil && n == 0 && !end {
		err = cc.flush()
	}
	for err == nil {
		n, rerr := body.Read(*bp)
		end := rerr == io.EOF
		if !end && rerr == nil && n > 0 {
			// A body that knows its end arrived ends with this frame.
			if left, done := ready.Of(body); done && left == 0 {
				end = true
			}
		}
		if err = cc.sendData(st, (*bp)[:n], end && !trailers); err != nil {
			break
		}
		if end {
			break
		}
		err = rerr
	}
	if err == nil && trailers {
		err = cc.sendTrailers(st)
	}
	switch {
	case errors.Is(err, errH2SendStopped):
		// The stream ended without the rest of the body (a complete
		// response, or a reset), and whoever ended it said why.
	case err != nil:
		cc.resetStream(st, http2.ErrCodeCancel, err)
	default:
		cc.sendFinished(st)
	}
}

// sendData writes data as the stream's and the connection's send
// windows allow, waiting for them to grow, with END_STREAM on the last
// frame when end is set.
func (cc *h2Conn) sendData(st *h2Stream, data []byte, end bool) error {
	for len(data) > 0 || end {
		cc.mu.Lock()
		for len(data) > 0 && (st.sendAvail <= 0 || cc.sendWin <= 0) && !st.sendStopped && cc.err == nil {
			cc.winCond.Wait()
		}
		if st.sendStopped || cc.err != nil {
			cc.mu.Unlock()
			return errH2SendStopped
		}
		n := min(int32(len(data)), st.sendAvail, cc.sendWin, int32(cc.peerMaxFrame))
		st.sendAvail -= n
		cc.sendWin -= n
		cc.mu.Unlock()
		chunk := data[:n]
		data = data[n:]
		last := end && len(data) == 0
		if err := cc.writeFrames(func(fr *http2.Framer) error { return fr.WriteData(st.id, last, chunk) }); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
	return nil
}

var errH2SendStopped = errors.New("http2: request body no longer wanted")

// sendTrailers writes the request's trailers with END_STREAM.
func (cc *h2Conn) sendTrailers(st *h2Stream) error {
	hdr, err := newH2Trailers(st.req.Trailer)
	if err != nil {
		return err
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.mu.Lock()
	maxFrame, stopped := int(cc.peerMaxFrame), st.sendStopped
	cc.mu.Unlock()
	if stopped {
		return errH2SendStopped
	}
	if err := cc.writeHeaderLocked(st.id, hdr, true, maxFrame); err != nil {
		return err
	}
	return cc.flushLocked()
}

var h2Buffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func getH2Buffer() *[]byte  { return h2Buffers.Get().(*[]byte) }
func putH2Buffer(b *[]byte) { h2Buffers.Put(b) }
