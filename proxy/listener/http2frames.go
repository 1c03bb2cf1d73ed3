package listener

// The frames of a lean HTTP/2 server connection (http2server.go): what
// each one does, the control-frame budget, and the errors they make.

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/http2"
)

// h2ConnError is a connection error with its reason, for the log.
type h2ConnError struct {
	code   http2.ErrCode
	reason string
}

func (e *h2ConnError) Error() string { return fmt.Sprintf("%v: %s", e.code, e.reason) }
func (e *h2ConnError) As(target any) bool {
	if ce, ok := target.(*http2.ConnectionError); ok {
		*ce = http2.ConnectionError(e.code)
		return true
	}
	return false
}

func connErr(code http2.ErrCode, format string, args ...any) error {
	return &h2ConnError{code: code, reason: fmt.Sprintf(format, args...)}
}

var errH2ConnGone = errors.New("http2: client connection gone")

func (sc *h2sConn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return sc.onHeaders(f)
	case *http2.DataFrame:
		return sc.onData(f)
	case *http2.RSTStreamFrame:
		return sc.onReset(f)
	case *http2.SettingsFrame:
		return sc.onSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			sc.mu.Lock()
			sc.pingSent = false
			sc.mu.Unlock()
			return nil
		}
		if err := sc.spendControl(); err != nil {
			return err
		}
		return sc.writeFrames(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
	case *http2.WindowUpdateFrame:
		return sc.onWindowUpdate(f)
	case *http2.GoAwayFrame:
		sc.shutdown()
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			sc.resetStream(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "PUSH_PROMISE from a client")
	case *http2.ContinuationFrame:
		return connErr(http2.ErrCodeProtocol, "CONTINUATION without HEADERS")
	}
	return nil
}

// spendControl charges a PING or SETTINGS frame to the control-frame
// budget when nothing progressed since the last one (h2guard.go says
// why): past the budget, the connection ends.
func (sc *h2sConn) spendControl() error {
	now := time.Now()
	if p := sc.progress.Load(); p != sc.seenProgress {
		sc.seenProgress = p
		sc.lastControl = now
		return nil
	}
	if !sc.lastControl.IsZero() {
		sc.tokens = min(controlBurst, sc.tokens+now.Sub(sc.lastControl).Seconds()*controlRate)
	}
	sc.lastControl = now
	if sc.tokens < 1 {
		sc.s.log.Warn("HTTP/2 connection ended: PING and SETTINGS frames without requests, past the budget",
			"remote", sc.remote, "burst", controlBurst, "per_second", controlRate)
		return connErr(http2.ErrCodeEnhanceYourCalm, "PING and SETTINGS frames without requests, past the budget")
	}
	sc.tokens--
	return nil
}

func (sc *h2sConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if err := sc.spendControl(); err != nil {
		return err
	}
	var tableSize uint32
	tableSet := false
	sc.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxFrameSize:
			sc.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			tableSize, tableSet = s.Val, true
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(sc.peerInitWin)
			for _, st := range sc.streams {
				if int64(st.sendAvail)+delta > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.sendAvail += int32(delta)
			}
			sc.peerInitWin = int32(s.Val)
			sc.winCond.Broadcast()
		}
		return nil
	})
	sc.mu.Unlock()
	if err != nil {
		return err
	}
	return sc.writeFrames(func(fr *http2.Framer) error {
		if tableSet {
			sc.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return fr.WriteSettingsAck()
	})
}

func (sc *h2sConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if f.StreamID == 0 {
		if int64(sc.sendWin)+int64(f.Increment) > 1<<31-1 {
			return connErr(http2.ErrCodeFlowControl, "connection send window above 2^31-1")
		}
		sc.sendWin += int32(f.Increment)
		sc.winCond.Broadcast()
		return nil
	}
	st := sc.streams[f.StreamID]
	if st == nil {
		if f.StreamID > sc.lastID {
			return connErr(http2.ErrCodeProtocol, "WINDOW_UPDATE on idle stream %d", f.StreamID)
		}
		return nil
	}
	if int64(st.sendAvail)+int64(f.Increment) > 1<<31-1 {
		sc.mu.Unlock()
		sc.resetStream(f.StreamID, http2.ErrCodeFlowControl)
		sc.mu.Lock()
		return nil
	}
	st.sendAvail += int32(f.Increment)
	sc.winCond.Broadcast()
	return nil
}

func (sc *h2sConn) onReset(f *http2.RSTStreamFrame) error {
	sc.mu.Lock()
	st := sc.streams[f.StreamID]
	idle := st == nil && f.StreamID > sc.lastID
	sc.mu.Unlock()
	if idle {
		return connErr(http2.ErrCodeProtocol, "RST_STREAM on idle stream %d", f.StreamID)
	}
	if st != nil {
		st.reset(http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode, Cause: errClientReset})
	}
	return nil
}

var errClientReset = errors.New("client reset the stream")

// onStreamError answers a malformed frame or header block with
// RST_STREAM; a request whose header block was malformed still opened
// its stream (RFC 9113 §5.1).
func (sc *h2sConn) onStreamError(se http2.StreamError) {
	sc.mu.Lock()
	if se.StreamID > sc.lastID && se.StreamID%2 == 1 {
		sc.lastID = se.StreamID
	}
	st := sc.streams[se.StreamID]
	sc.mu.Unlock()
	sc.progress.Add(1)
	if st != nil {
		st.reset(se)
	}
	sc.resetStream(se.StreamID, se.Code)
}
