package listener

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/internal/workpool"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/h2wire"
)

// h2Server is the lean HTTP/2 server of a socket: each connection's
// frames are read on the goroutine that accepted it, every request runs
// its handler on a goroutine of its own, and the handler writes its
// response frames itself, under the connection's write lock, flushing
// only when it flushes or returns — so a response that is complete when
// its handler returns (a gRPC unary answer: HEADERS, DATA, trailers)
// leaves in one write. Go's HTTP/2 server hands every frame between the
// handler, a serving goroutine and a writer goroutine, and flushes each
// one, which on the sidecar's gRPC path cost more than the rest of the
// exchange.
//
// Frames are read and written with golang.org/x/net/http2's Framer,
// which checks each frame's shape, and HPACK. This file owns the
// connection's start, read loop and handler workers (RFC 9113 §3.4),
// http2frames.go what each frame does (§5, §6), http2lifecycle.go its
// writes, GOAWAY, close and timers, http2stream.go a request and its
// body, http2response.go the http.ResponseWriter. What it answers
// follows Go's server, which the same listener tests pin
// (http2_conformance_test.go, flood_test.go, headers_limit_test.go):
// refused and reset streams, GOAWAY codes, the 431 of an oversized
// header block. Where Go's server needs the listener's h2Guard (a
// malformed request is reset, control-frame floods are bounded), this
// server does it itself.
type h2Server struct {
	log     *slog.Logger
	handler http.Handler
	base    context.Context // carries http.ServerContextKey; cancelled when a drain times out
	connCtx func(context.Context, *connInfo) context.Context

	maxStreams    uint32
	streamWindow  int32
	connWindow    int32
	tableSize     uint32
	maxHeaderList uint32
	maxString     int
	idleTimeout   time.Duration
	// readBuffer is the size of each connection's read buffer; 0: the
	// listeners' pooled readBufferSize.
	readBuffer int
	// parkIdle parks the reader of a connection that has nothing to read
	// (h2sConn.park).
	parkIdle     bool
	pingInterval time.Duration
	pingTimeout  time.Duration

	// workers run the handlers of every connection's streams. They are
	// the server's, not a connection's: a control plane's thousands of
	// connections each open one long-lived stream, and workers kept per
	// connection would each wait out their idle timeout with the stack
	// that stream's handler grew.
	workers *workpool.Pool[pendingStream]

	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*h2sConn]struct{}
}

// HTTP/2 server defaults, as Go's server has them.
const (
	h2DefaultStreamWindow = 1 << 20
	h2DefaultConnWindow   = 1 << 20
	h2MaxReadFrameSize    = 1 << 20
	// h2BufferBeforeHeader is how much of a response body is held before
	// its header goes out, so that a short response's header, body and
	// end leave together, with a Content-Length (Go's server: 4 KiB).
	h2BufferBeforeHeader = 4 << 10
)

func newH2Server(log *slog.Logger, handler http.Handler, srv *http.Server, base context.Context, cfg *config.HTTP, connCtx func(context.Context, *connInfo) context.Context) *h2Server {
	s := &h2Server{
		log:          log,
		handler:      handler,
		base:         context.WithValue(base, http.ServerContextKey, srv),
		connCtx:      connCtx,
		maxStreams:   cfg.HTTP2.MaxConcurrentStreams,
		streamWindow: int32(cfg.HTTP2.InitialStreamWindowSize),
		connWindow:   int32(cfg.HTTP2.InitialConnectionWindowSize),
		tableSize:    cfg.HTTP2.HpackTableSize,
		idleTimeout:  srv.IdleTimeout,
		pingInterval: cfg.HTTP2.KeepaliveInterval,
		pingTimeout:  cfg.HTTP2.KeepaliveTimeout,
		conns:        make(map[*h2sConn]struct{}),
		workers:      workpool.New(runPending, maxIdleWorkers, workerIdleTimeout, nil),
	}
	if s.maxStreams == 0 {
		s.maxStreams = config.DefaultMaxConcurrentStreams
	}
	if s.streamWindow <= 0 {
		s.streamWindow = h2DefaultStreamWindow
	}
	if s.connWindow < s.streamWindow {
		s.connWindow = max(s.streamWindow, h2DefaultConnWindow)
	}
	if s.tableSize == 0 {
		s.tableSize = 4096
	}
	// The header block bound and the longest string, as Go's server
	// bounds them (bound.startHTTP).
	s.maxHeaderList = uint32(max(srv.MaxHeaderBytes, http.DefaultMaxHeaderBytes) + 320)
	if srv.MaxHeaderBytes > 0 {
		s.maxHeaderList = uint32(srv.MaxHeaderBytes + 320)
	}
	s.maxString = int(s.maxHeaderList)
	if s.pingInterval > 0 && s.pingTimeout <= 0 {
		s.pingTimeout = 15 * time.Second
	}
	return s
}

// serve serves conn, an HTTP/2 connection (h2 by ALPN, or cleartext that
// starts with the client preface), until it ends. It returns once every
// handler of the connection has, unless the server parks idle readers:
// then it may return while the connection is served on, and done, when
// not nil, is called once it has ended.
func (s *h2Server) serve(c *connInfo, conn net.Conn, done func()) {
	sc := newH2sConn(s, c, conn)
	sc.done = done
	s.track(sc)
	sc.serve()
}

// drain sends GOAWAY on every connection: each serves the streams it
// has and closes after the last.
func (s *h2Server) drain() {
	s.draining.Store(true)
	for _, sc := range s.snapshot() {
		sc.shutdown()
	}
}

// closeAll closes every connection, when a drain times out.
func (s *h2Server) closeAll() {
	for _, sc := range s.snapshot() {
		sc.info.raw.Close()
	}
}

func (s *h2Server) snapshot() []*h2sConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*h2sConn, 0, len(s.conns))
	for sc := range s.conns {
		out = append(out, sc)
	}
	return out
}

func (s *h2Server) track(sc *h2sConn) {
	s.mu.Lock()
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	if s.draining.Load() {
		sc.shutdown()
	}
}

func (s *h2Server) untrack(sc *h2sConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
}

// h2sConn is one HTTP/2 connection of the server. Its reader (serve)
// owns the framer's reading side and lastID; handlers write under wmu.
// Lock order: wmu before mu; a stream's own mu is taken with neither.
type h2sConn struct {
	s      *h2Server
	info   *connInfo
	conn   net.Conn
	br     *bufio.Reader
	fr     *http2.Framer
	tls    *tls.ConnectionState
	remote string
	ctx    context.Context
	cancel context.CancelFunc

	// Of the reader only: the control-frame budget (see h2guard.go).
	tokens       float64
	lastControl  time.Time
	seenProgress uint64
	progress     atomic.Uint64 // requests and data, either way
	lastRead     atomic.Int64  // unix nanoseconds of the last frame read
	handlers     sync.WaitGroup
	// pending are the streams opened by the frames read so far that
	// arrived together, whose handlers start once they are all handled
	// (h2wire.NextFrameBuffered).
	pending []pendingStream

	// wmu is the frame writer and its lock (group commit: see
	// h2wire.Writer), which also guards henc, hbuf and werr.
	wmu  *h2wire.Writer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	werr error

	mu       sync.Mutex
	winCond  sync.Cond // on mu: send windows grew, or a stream or the connection ended
	streams  map[uint32]*h2sStream
	lastID   uint32 // the highest stream the client opened
	running  uint32 // handlers running
	goAway   bool   // GOAWAY sent: no new stream is served
	closed   bool
	idle     *time.Timer
	pingSent bool
	// The client's settings and the send window.
	sendWin      int32
	peerInitWin  int32
	peerMaxFrame uint32
	// The connection's receive window.
	inflow h2wire.Inflow

	// sawSettings: the client's first frame, SETTINGS, was read.
	sawSettings bool
	// raw is the socket an idle reader parks on; nil: it does not park.
	raw syscall.RawConn
	// done is called once the connection has ended (h2Server.serve).
	done func()
}

func newH2sConn(s *h2Server, c *connInfo, conn net.Conn) *h2sConn {
	sc := &h2sConn{
		s: s, info: c, conn: conn, tls: c.tlsState, remote: conn.RemoteAddr().String(),
		tokens:       controlBurst,
		streams:      make(map[uint32]*h2sStream),
		sendWin:      65535,
		peerInitWin:  65535,
		peerMaxFrame: 16384,
		inflow:       h2wire.NewInflow(s.connWindow),
	}
	ctx := context.WithValue(s.base, http.LocalAddrContextKey, conn.LocalAddr())
	sc.ctx, sc.cancel = context.WithCancel(s.connCtx(ctx, c))
	sc.winCond.L = &sc.mu
	sc.wmu = h2wire.NewWriter(conn)
	if s.readBuffer > 0 {
		sc.br = bufio.NewReaderSize(conn, s.readBuffer)
	} else {
		sc.br = getReader(conn)
	}
	sc.fr = http2.NewFramer(sc.wmu, sc.br)
	sc.fr.SetMaxReadFrameSize(h2MaxReadFrameSize)
	sc.fr.ReadMetaHeaders = hpack.NewDecoder(s.tableSize, nil)
	sc.fr.MaxHeaderListSize = s.maxHeaderList
	sc.fr.SetReuseFrames()
	sc.henc = hpack.NewEncoder(&sc.hbuf)
	if s.parkIdle {
		sc.raw = parkableSocket(conn)
	}
	return sc
}

var errH2Preface = errors.New("http2: the connection does not start with the client preface")

// serve runs the connection: preface and SETTINGS, then frames until it
// ends (read); then it cancels the handlers and waits for them (finish).
func (sc *h2sConn) serve() {
	if !sc.start() {
		sc.finish()
		return
	}
	sc.armTimers()
	sc.read()
}

// start reads the client preface and sends the server's SETTINGS.
func (sc *h2sConn) start() bool {
	if err := sc.readPreface(); err != nil {
		sc.s.log.Debug("HTTP/2 connection refused", "remote", sc.remote, "error", err)
		return false
	}
	settings := []http2.Setting{
		{ID: http2.SettingMaxFrameSize, Val: h2MaxReadFrameSize},
		{ID: http2.SettingMaxConcurrentStreams, Val: sc.s.maxStreams},
		{ID: http2.SettingMaxHeaderListSize, Val: sc.s.maxHeaderList},
		{ID: http2.SettingHeaderTableSize, Val: sc.s.tableSize},
		{ID: http2.SettingInitialWindowSize, Val: uint32(sc.s.streamWindow)},
	}
	err := sc.writeFrames(func(fr *http2.Framer) error {
		if err := fr.WriteSettings(settings...); err != nil {
			return err
		}
		if inc := sc.s.connWindow - 65535; inc > 0 {
			return fr.WriteWindowUpdate(0, uint32(inc))
		}
		return nil
	})
	return err == nil
}

// read reads and handles frames until the connection ends, then finishes
// it; or until the reader parks, when another goroutine reads on.
func (sc *h2sConn) read() {
	if sc.readFrames() {
		return
	}
	sc.finish()
}

// finish ends the connection once its frames are read: it cancels the
// handlers and waits for them.
func (sc *h2sConn) finish() {
	sc.startPending()
	sc.cancel()
	sc.closeConn()
	sc.abortStreams(errH2ConnGone) // wakes handlers blocked on bodies and windows
	sc.handlers.Wait()
	sc.wmu.Lock()
	sc.werr = net.ErrClosed
	sc.wmu.Unlock()
	if sc.s.readBuffer == 0 {
		putReader(sc.br)
	}
	sc.s.untrack(sc)
	if sc.done != nil {
		sc.done()
	}
}

// park hands the reading of a connection that has nothing buffered to a
// new goroutine that waits for it to have something (at once, when the
// socket has it already), and reports whether it did; the reader then
// returns, and its goroutine ends. A reader's
// stack grows with the frames it handles (8 KiB is common), and a
// goroutine parked in a read keeps it, since the read path alone uses
// more than a quarter of it (the runtime shrinks stacks only below
// that); a goroutine that only waits for the socket keeps the smallest.
// For servers of many connections that are mostly idle, as a control
// plane's sidecars are between pushes: each wake starts a goroutine.
func (sc *h2sConn) park() bool {
	if sc.raw == nil || !sc.sawSettings || len(sc.pending) > 0 || sc.br.Buffered() > 0 {
		return false
	}
	go sc.resume()
	return true
}

// resume waits for a parked connection to have something to read, then
// reads on.
func (sc *h2sConn) resume() {
	awaitReadable(sc.raw)
	sc.read()
}

// readPreface reads the client preface (RFC 9113 §3.4).
func (sc *h2sConn) readPreface() error {
	var buf [len(http2.ClientPreface)]byte
	sc.conn.SetReadDeadline(time.Now().Add(readHeaderTimeout))
	if _, err := io.ReadFull(sc.br, buf[:]); err != nil {
		return fmt.Errorf("%w: %v", errH2Preface, err)
	}
	sc.conn.SetReadDeadline(time.Time{})
	if string(buf[:]) != http2.ClientPreface {
		return errH2Preface
	}
	return nil
}

// readFrames reads and handles frames until the connection ends, or the
// reader parks after a frame (reported true); a resumed reader reads a
// frame first, so that an end the wait woke for is read.
func (sc *h2sConn) readFrames() (parked bool) {
	for {
		f, err := sc.fr.ReadFrame()
		sc.lastRead.Store(time.Now().UnixNano())
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				sc.onStreamError(se)
				continue
			}
			var ce http2.ConnectionError
			switch {
			case errors.As(err, &ce):
				sc.goAwayNow(http2.ErrCode(ce), err.Error())
			case errors.Is(err, http2.ErrFrameTooLarge):
				sc.goAwayNow(http2.ErrCodeFrameSize, err.Error())
			}
			return false
		}
		if !sc.sawSettings {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				sc.goAwayNow(http2.ErrCodeProtocol, "the client preface's first frame is not SETTINGS")
				return false
			}
			sc.sawSettings = true
		}
		if err := sc.handle(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				sc.goAwayNow(http2.ErrCode(ce), err.Error())
			}
			return false
		}
		if len(sc.pending) > 0 && (len(sc.pending) >= maxPendingStreams || !h2wire.NextFrameBuffered(sc.br)) {
			sc.startPending()
		}
		if sc.park() {
			return true
		}
	}
}

// maxPendingStreams bounds the handlers held back while the frames that
// arrived with their requests are read.
const maxPendingStreams = 16

type pendingStream struct {
	st      *h2sStream
	handler http.Handler
}

// startPending starts the handlers of the streams opened by the frames
// just read: on an idle worker of the server, or a new one.
func (sc *h2sConn) startPending() {
	for i, p := range sc.pending {
		sc.s.workers.Go(p)
		sc.pending[i] = pendingStream{}
	}
	sc.pending = sc.pending[:0]
}

// Handler workers (workpool: a worker keeps the stack its handlers grew;
// a goroutine per stream would grow a fresh stack for every request,
// which cost gRPC calls as much as their trace-context parsing and span
// start together: runtime.newstack, 8 % of a sidecar's CPU at
// saturation).
const (
	// maxIdleWorkers bounds the workers a server keeps waiting, however
	// many connections it serves: a sidecar's peers' connections and
	// their concurrent streams, a control plane's bursts of (re)connecting
	// clients (whose handlers detach at once, so few run together).
	maxIdleWorkers = 64
	// workerIdleTimeout is how long a worker waits for a stream; the
	// workers of a server whose connections have all ended leave then.
	workerIdleTimeout = 5 * time.Second
)

func runPending(p pendingStream) { p.st.run(p.handler) }
