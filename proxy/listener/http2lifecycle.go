package listener

// How a lean HTTP/2 server connection (http2server.go) writes, ends and
// times out: flushes, GOAWAY, graceful shutdown, close, the idle timeout
// and keepalive PINGs.

import (
	"io"
	"time"

	"golang.org/x/net/http2"
)

// resetStream sends RST_STREAM.
func (sc *h2sConn) resetStream(id uint32, code http2.ErrCode) {
	sc.writeFrames(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
}

// writeFrames writes frames with write and flushes them; a failure
// breaks the connection.
func (sc *h2sConn) writeFrames(write func(*http2.Framer) error) error {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	if sc.werr != nil {
		return sc.werr
	}
	if err := write(sc.fr); err != nil {
		return sc.brokenLocked(err)
	}
	return sc.flushLocked()
}

func (sc *h2sConn) flushLocked() error {
	if sc.werr != nil {
		return sc.werr
	}
	if err := sc.wmu.FlushLocked(); err != nil {
		return sc.brokenLocked(err)
	}
	return nil
}

// brokenLocked notes a failed write: the connection ends.
func (sc *h2sConn) brokenLocked(err error) error {
	if sc.werr == nil {
		sc.werr = err
		sc.cancel()
		sc.conn.Close()
	}
	return sc.werr
}

// goAwayNow ends the connection for a protocol error: GOAWAY with code,
// then close.
func (sc *h2sConn) goAwayNow(code http2.ErrCode, reason string) {
	sc.s.log.Debug("HTTP/2 connection error", "remote", sc.remote, "code", code.String(), "reason", reason)
	sc.mu.Lock()
	last := sc.lastID
	sc.goAway = true
	sc.mu.Unlock()
	sc.conn.SetWriteDeadline(time.Now().Add(time.Second)) // a client that does not read gets no more time
	if sc.writeFrames(func(fr *http2.Framer) error { return fr.WriteGoAway(last, code, nil) }) == nil {
		sc.linger()
	}
	sc.closeConn()
}

// linger half-closes the connection after a GOAWAY and reads what the
// client still sends, for a second or 1 MiB at most, as Go's server
// does: closed with unread bytes, the connection would be reset, and the
// client's stack could drop the GOAWAY before its reader saw it.
func (sc *h2sConn) linger() {
	if cw, ok := sc.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	sc.conn.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, sc.conn, 1<<20)
}

// shutdown ends the connection gracefully: GOAWAY (NO_ERROR) with the
// last stream served, which the client may finish; the connection
// closes once no handler runs.
func (sc *h2sConn) shutdown() {
	sc.mu.Lock()
	if sc.goAway {
		sc.mu.Unlock()
		return
	}
	sc.goAway = true
	last, idle := sc.lastID, sc.running == 0
	sc.mu.Unlock()
	sc.writeFrames(func(fr *http2.Framer) error { return fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
	if idle {
		sc.closeWhenWritten()
	}
}

// closeWhenWritten closes the connection once every frame appended so far
// has been written. With group commit a stream's last frames may sit in
// the buffer of another goroutine's flush still in its write (a GOAWAY's,
// say); closing at once would cut them off, and the client would see the
// connection end without its response.
func (sc *h2sConn) closeWhenWritten() {
	sc.wmu.Lock()
	sc.wmu.SyncLocked() // a failed write broke the connection already
	sc.wmu.Unlock()
	sc.closeConn()
}

func (sc *h2sConn) closeConn() {
	sc.mu.Lock()
	if sc.closed {
		sc.mu.Unlock()
		return
	}
	sc.closed = true
	if sc.idle != nil {
		sc.idle.Stop()
	}
	sc.winCond.Broadcast()
	sc.mu.Unlock()
	sc.conn.Close()
}

// abortStreams ends the streams left when the connection is gone.
func (sc *h2sConn) abortStreams(err error) {
	sc.mu.Lock()
	streams := make([]*h2sStream, 0, len(sc.streams))
	for _, st := range sc.streams {
		streams = append(streams, st)
	}
	sc.mu.Unlock()
	for _, st := range streams {
		st.reset(err)
	}
}

// armTimers starts the idle timeout (GOAWAY after that long without a
// stream) and the keepalive PINGs, when configured.
func (sc *h2sConn) armTimers() {
	if d := sc.s.idleTimeout; d > 0 {
		sc.mu.Lock()
		sc.idle = time.AfterFunc(d, sc.onIdle)
		sc.mu.Unlock()
	}
	if sc.s.pingInterval > 0 {
		time.AfterFunc(sc.s.pingInterval, sc.keepalive)
	}
}

func (sc *h2sConn) onIdle() {
	sc.mu.Lock()
	busy := sc.running > 0
	sc.mu.Unlock()
	if !busy {
		sc.shutdown()
	}
}

// keepalive sends a PING when nothing was read for the keepalive
// interval, and closes the connection when the one before it was not
// answered within the timeout.
func (sc *h2sConn) keepalive() {
	sc.mu.Lock()
	closed, unanswered := sc.closed, sc.pingSent
	sc.mu.Unlock()
	if closed {
		return
	}
	since := time.Since(time.Unix(0, sc.lastRead.Load()))
	switch {
	case unanswered && since >= sc.s.pingTimeout:
		sc.s.log.Debug("HTTP/2 connection ended: keepalive PING unanswered", "remote", sc.remote, "timeout", sc.s.pingTimeout)
		sc.closeConn()
		return
	case !unanswered && since >= sc.s.pingInterval:
		sc.mu.Lock()
		sc.pingSent = true
		sc.mu.Unlock()
		sc.writeFrames(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{'w', 'e', 'f', 't'}) })
		time.AfterFunc(sc.s.pingTimeout, sc.keepalive)
		return
	}
	time.AfterFunc(sc.s.pingInterval-min(since, sc.s.pingInterval), sc.keepalive)
}
