package cluster

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/proxy/internal/h2wire"
)

// Errors of the HTTP/2 client.
var (
	// errH2NotProcessed marks a request the server did not process: it
	// refused the stream, or a GOAWAY's last stream was below it, or the
	// connection had failed before the request was written. Sending it
	// again is safe.
	errH2NotProcessed = errors.New("http2: request not processed by the server")
	errH2ConnClosed   = errors.New("http2: client connection closed")
	errH2BodyClosed   = errors.New("http2: response body closed")
	errH2HeaderList   = errors.New("http2: request header list larger than the server's advertised limit")
	errH2StreamLimit  = errors.New("http2: connection at the server's concurrent stream limit, learned after the stream was reserved")
)

// notProcessed wraps err, the reason, as errH2NotProcessed.
type notProcessed struct{ err error }

func (e *notProcessed) Error() string   { return e.err.Error() + " (not processed; safe to retry)" }
func (e *notProcessed) Unwrap() []error { return []error{errH2NotProcessed, e.err} }

// h2Conn is one HTTP/2 connection to an upstream host. Its reader
// goroutine (readLoop) reads every frame; requests write theirs under
// wmu. Lock order: wmu before mu; a stream's own mu is never held with
// either.
type h2Conn struct {
	pool *h2Pool
	conn net.Conn
	tls  *tls.ConnectionState
	br   *bufio.Reader
	fr   *http2.Framer
	// pending are the responses whose header arrived with the frames
	// being read; their callers get them once every frame that arrived
	// together is handled (h2wire.NextFrameBuffered). Of the reader only.
	pending     []*h2Stream
	idleTimeout time.Duration
	idleTimer   *time.Timer

	// reserved counts the streams reserved by requests or open, which
	// maxStreams (the server's SETTINGS_MAX_CONCURRENT_STREAMS) bounds.
	// An unusable connection takes no new stream and closes when the
	// last one ends.
	reserved   atomic.Int32
	maxStreams atomic.Int32
	unusable   atomic.Bool
	closeOnce  sync.Once

	// wmu is the frame writer and its lock (group commit: see
	// h2wire.Writer), which also guards henc, hbuf and werr.
	wmu  *h2wire.Writer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	werr error // the first write error; the connection is then broken

	mu      sync.Mutex
	winCond sync.Cond // on mu: send windows grew, or a stream or the connection ended
	streams map[uint32]*h2Stream
	nextID  uint32
	err     error // why the connection ended
	// Send side: the connection's window and the server's settings.
	sendWin           int32
	peerInitWin       int32
	peerMaxFrame      uint32
	peerMaxHeaderList uint64
	// Receive side: the connection window left, and bytes consumed but
	// not yet returned to the server by WINDOW_UPDATE.
	inflow h2wire.Inflow
}

// newH2Conn starts HTTP/2 on conn: it writes the client preface, the
// client's settings and its connection window, and starts the reader.
func newH2Conn(conn net.Conn, pool *h2Pool, idleTimeout time.Duration) (*h2Conn, error) {
	cc := &h2Conn{
		pool:              pool,
		conn:              conn,
		idleTimeout:       idleTimeout,
		streams:           make(map[uint32]*h2Stream),
		nextID:            1,
		sendWin:           65535,
		peerInitWin:       65535,
		peerMaxFrame:      16384,
		peerMaxHeaderList: 1<<64 - 1,
		inflow:            h2wire.NewInflow(h2ConnWindow),
	}
	if tc, ok := conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		cc.tls = &cs
	}
	cc.maxStreams.Store(h2InitialMaxStreams)
	cc.winCond.L = &cc.mu
	cc.wmu = h2wire.NewWriter(conn)
	cc.br = bufio.NewReaderSize(conn, 16<<10)
	cc.fr = http2.NewFramer(cc.wmu, cc.br)
	cc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cc.fr.MaxHeaderListSize = maxResponseHeaderBytes
	cc.fr.SetReuseFrames()
	cc.henc = hpack.NewEncoder(&cc.hbuf)

	cc.wmu.Lock()
	defer cc.wmu.Unlock() // nothing else writes yet
	cc.wmu.Write([]byte(http2.ClientPreface))
	cc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxResponseHeaderBytes},
	)
	cc.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	if err := cc.wmu.FlushLocked(); err != nil {
		return nil, fmt.Errorf("http2: write client preface: %w", err)
	}
	if idleTimeout > 0 {
		cc.idleTimer = time.AfterFunc(idleTimeout, cc.closeIfIdle)
	}
	go cc.readLoop()
	return cc, nil
}

// reserve takes a stream slot, unless the connection is unusable or full.
func (cc *h2Conn) reserve() bool {
	for {
		if cc.unusable.Load() {
			return false
		}
		n := cc.reserved.Load()
		if n >= cc.maxStreams.Load() {
			return false
		}
		if cc.reserved.CompareAndSwap(n, n+1) {
			break
		}
	}
	if cc.unusable.Load() { // made unusable meanwhile; its closer saw the slot
		cc.release()
		return false
	}
	return true
}

// release gives a stream slot back. The last one out closes an unusable
// connection, or arms the idle timer.
func (cc *h2Conn) release() {
	if cc.reserved.Add(-1) != 0 {
		return
	}
	if cc.unusable.Load() {
		cc.close()
	} else if cc.idleTimer != nil {
		cc.idleTimer.Reset(cc.idleTimeout)
	}
}

func (cc *h2Conn) closeIfIdle() {
	if cc.reserved.Load() != 0 {
		return
	}
	cc.retire(true)
}

// retire closes the connection when it carries no stream; with stop,
// it also takes no new stream and closes when its last one ends.
func (cc *h2Conn) retire(stop bool) {
	if stop {
		cc.unusable.Store(true)
		cc.pool.remove(cc)
	}
	if cc.reserved.Load() == 0 {
		cc.unusable.Store(true)
		cc.close()
	}
}

// close closes the connection; the reader then ends every stream.
func (cc *h2Conn) close() {
	cc.closeOnce.Do(func() {
		cc.unusable.Store(true)
		cc.pool.remove(cc)
		if cc.idleTimer != nil {
			cc.idleTimer.Stop()
		}
		cc.conn.Close()
	})
}

// flushLocked flushes the frames written; a failure breaks the
// connection. Call with wmu held.
func (cc *h2Conn) flushLocked() error {
	if cc.werr != nil {
		return cc.werr
	}
	if err := cc.wmu.FlushLocked(); err != nil {
		cc.werr = err
		go cc.close()
		return err
	}
	return nil
}

// flush flushes the frames written.
func (cc *h2Conn) flush() error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	return cc.flushLocked()
}

// writeFrames writes frames with write and flushes them.
func (cc *h2Conn) writeFrames(write func(*http2.Framer) error) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if cc.werr != nil {
		return cc.werr
	}
	if err := write(cc.fr); err != nil {
		cc.werr = err
		go cc.close()
		return err
	}
	return cc.flushLocked()
}

// consumed returns n bytes the caller read, or the client discarded, to
// the connection window, with a WINDOW_UPDATE once half of it is out;
// streamInc is the stream's own update (0 for none).
func (cc *h2Conn) consumed(id uint32, n int, streamInc uint32) {
	var connInc uint32
	if n > 0 {
		cc.mu.Lock()
		connInc = cc.inflow.Consumed(n)
		cc.mu.Unlock()
	}
	if connInc == 0 && streamInc == 0 {
		return
	}
	cc.writeFrames(func(fr *http2.Framer) error {
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

// remove ends st on the connection: it forgets it, stops its body
// writer and gives its slot back. It reports false when st had ended.
func (cc *h2Conn) remove(st *h2Stream) bool {
	cc.mu.Lock()
	if st.removed {
		cc.mu.Unlock()
		return false
	}
	st.removed, st.sendStopped = true, true
	delete(cc.streams, st.id)
	cc.winCond.Broadcast()
	cc.mu.Unlock()
	cc.release()
	return true
}

// resetStream ends st with err and, when it was still open, sends
// RST_STREAM with code.
func (cc *h2Conn) resetStream(st *h2Stream, code http2.ErrCode, err error) {
	st.abort(err)
	if cc.remove(st) {
		cc.writeFrames(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, code) })
	}
}

// sendFinished notes that st's request was sent whole; a stream whose
// response also ended is done.
func (cc *h2Conn) sendFinished(st *h2Stream) {
	cc.mu.Lock()
	st.sendDone = true
	done := st.recvDone
	cc.mu.Unlock()
	if done {
		cc.remove(st)
	}
}

// recvFinished notes that st's response ended (END_STREAM). Its request
// is done too: a body still being sent is cut short, with RST_STREAM
// (CANCEL), as http.Transport does.
func (cc *h2Conn) recvFinished(st *h2Stream) {
	cc.mu.Lock()
	st.recvDone = true
	sent := st.sendDone
	cc.mu.Unlock()
	if sent {
		cc.remove(st)
		return
	}
	if cc.remove(st) {
		cc.writeFrames(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, http2.ErrCodeCancel) })
	}
}

// fail ends the connection and every stream on it with err. err is
// recorded before the connection closes, so that a write the closing
// interrupts reports it (lost).
func (cc *h2Conn) fail(err error) {
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
	}
	streams := make([]*h2Stream, 0, len(cc.streams))
	for _, st := range cc.streams {
		streams = append(streams, st)
	}
	cc.mu.Unlock()
	cc.close()
	for _, st := range streams {
		st.abort(fmt.Errorf("http2: upstream connection lost: %w", err))
		cc.remove(st)
	}
}

// lost is the error of a write that failed: the reason the connection
// failed (fail), such as the server's protocol violation the reader
// closed it for, or else err itself.
func (cc *h2Conn) lost(err error) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return fmt.Errorf("http2: upstream connection lost: %w", cc.err)
	}
	return err
}

// connError ends the connection for a protocol violation of the server:
// GOAWAY with code, then close.
func (cc *h2Conn) connError(code http2.ErrCode, reason string) error {
	err := fmt.Errorf("http2: server protocol error (%v): %s", code, reason)
	cc.writeFrames(func(fr *http2.Framer) error { return fr.WriteGoAway(0, code, []byte(reason)) })
	return err
}
