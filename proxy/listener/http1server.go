package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// http1Server is the lean HTTP/1.x server of a bound socket: one
// goroutine serves a connection end to end — it reads a request with
// http.ReadRequest from the connection's pooled read buffer, validates
// it as net/http's server does, runs the handler with the connection's
// own pooled ResponseWriter (http1response.go) and reads the next
// request. net/http's server instead pays per request for a
// background-read goroutine's wake-up (to notice clients that go away),
// a context, a response object and a copy of the response header.
//
// What it does as net/http's server does, and where it differs:
//
//   - Parsing and framing are http.ReadRequest's; the header read bound,
//     Host rules, header validation, unsupported versions and transfer
//     codings, Expect, keep-alive and Connection: close, discarding an
//     unread body (up to 256 KiB, else closing) and the response framing
//     (Content-Length when known or when the handler finishes within 2
//     KiB, chunked otherwise, trailers, 1xx, HEAD, 204 and 304) follow
//     net/http's server.go. http1_diff_test.go replays a corpus through
//     both and compares what the handler sees and what the client gets.
//   - A request with both Content-Length and Transfer-Encoding is refused
//     with 400 and the connection closed (http1head.go); net/http serves it.
//   - The request's context is the connection's, built once: it carries
//     the connection's values and is cancelled when the client goes away
//     (a read or write on the connection fails) or the connection ends,
//     not when each handler returns. Code that registers on it
//     (context.AfterFunc, a child context) must release what it
//     registers when its request ends, as the router's exchange does, or
//     it accumulates for the life of the connection. The *http.Request
//     given to the handler is the connection's too, its fields set per
//     request.
//   - A client that goes away while its request is served is noticed by
//     a background read started only for exchanges still running after
//     watchDelay with their request body read (one reusable timer per
//     connection), instead of after every request: exchanges shorter
//     than that, nearly all of a sidecar's, never start one. So a client
//     that half-closes after sending pipelined requests gets them served
//     when they are quick; net/http's server, whose background read sees
//     the half-close at once, cancels them.
//   - On drain, a request already read is served (its response says
//     Connection: close) where net/http drops it; idle connections are
//     closed at once, connections that have not sent a first request are
//     left to send it (net/http gives them 5 seconds).
//   - ReadTimeout and WriteTimeout are not applied (the listener sets
//     neither); handlers may set deadlines with http.ResponseController.
//   - The header as of WriteHeader is kept as a shallow copy in a map
//     reused per connection (net/http clones it per response): a value
//     modified in place after WriteHeader is written modified.
//   - http.MaxBytesReader cannot make the lean writer close the
//     connection (its interface is unexported): the unread rest of the
//     body is discarded within the bound, or the connection closed.
type http1Server struct {
	log *slog.Logger
	// connContext adds a connection's values to the context of its
	// requests (bound.connValues).
	connContext func(context.Context, *connInfo) context.Context

	// Set by configure, before the first connection is served.
	srv               *http.Server // the handler and settings; ServerContextKey's value
	base              context.Context
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	h2c               bool // cleartext HTTP/2 by prior knowledge is handed off

	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*h1Conn]struct{}
}

// Tunables of the lean server.
const (
	// bufferBeforeChunking is how much of a body is held before the
	// response is committed to chunking: a handler that finishes within
	// it gets a Content-Length (net/http's bufferBeforeChunkingSize).
	bufferBeforeChunking = 2 << 10
	// maxPostHandlerReadBytes is the most of an unread request body read
	// to keep a connection (net/http's, and its rule).
	maxPostHandlerReadBytes = 256 << 10
	// lingerTimeout bounds how long a refused connection is read after
	// the refusal is sent, so that closing it does not reset the
	// refusal away (net/http's rstAvoidanceDelay).
	lingerTimeout = 500 * time.Millisecond
	// watchDelay is how long an exchange runs before a background read
	// watches for its client going away.
	watchDelay = 100 * time.Millisecond
	// readBufferSize is the connection's read buffer: header blocks that
	// fit are scanned and parsed in place.
	readBufferSize = 4 << 10
)

// h2cPreface starts a cleartext HTTP/2 connection by prior knowledge.
const h2cPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func newHTTP1Server(log *slog.Logger, connContext func(context.Context, *connInfo) context.Context) *http1Server {
	return &http1Server{log: log, connContext: connContext, conns: make(map[*h1Conn]struct{})}
}

// configure takes the handler and settings of srv, with base as the
// parent of every request context. Call it once, before serve.
func (s *http1Server) configure(srv *http.Server, base context.Context) {
	s.srv = srv
	s.base = context.WithValue(base, http.ServerContextKey, srv)
	s.readHeaderTimeout = cmpOr(srv.ReadHeaderTimeout, srv.ReadTimeout)
	s.idleTimeout = cmpOr(srv.IdleTimeout, srv.ReadTimeout)
	s.maxHeaderBytes = srv.MaxHeaderBytes
	if s.maxHeaderBytes <= 0 {
		s.maxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	s.h2c = srv.Protocols != nil && srv.Protocols.UnencryptedHTTP2()
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// headerReadBound is the most bytes a request line and header block may
// take: MaxHeaderBytes plus 4 KiB, net/http's bound.
func (s *http1Server) headerReadBound() int { return s.maxHeaderBytes + 4096 }

// connEnd is how a connection left the lean server.
type connEnd int

const (
	connClosed    connEnd = iota // closed by the server
	connHijacked                 // taken over by a handler
	connHandedOff                // cleartext HTTP/2, given to handOff
)

// serve serves c's requests on the calling goroutine until the
// connection is closed or hijacked, or — a cleartext HTTP/2 preface when
// the server takes h2c — handed to handOff, read bytes included.
func (s *http1Server) serve(c *connInfo, handOff func(net.Conn)) connEnd {
	hc := s.newConn(c)
	s.track(hc)
	defer s.untrack(hc)
	hc.conn.SetReadDeadline(deadline(s.readHeaderTimeout))
	if s.h2c && hc.tlsState == nil && hc.prefaceIsH2C() {
		hc.conn.SetReadDeadline(time.Time{})
		hc.end = connHandedOff
		handOff(&bufferedConn{Conn: hc.conn, r: hc.br})
		hc.release()
		return connHandedOff
	}
	for hc.serveRequest() && hc.awaitRequest() {
	}
	hc.release()
	return hc.end
}

// drain makes every response from now on close its connection, and
// closes idle connections at once.
func (s *http1Server) drain() {
	s.draining.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for hc := range s.conns {
		if hc.state.CompareAndSwap(h1Idle, h1Closed) {
			hc.conn.Close()
		}
	}
}

// closeAll closes every connection still served, when a drain times out.
func (s *http1Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for hc := range s.conns {
		hc.info.raw.Close()
	}
}

func (s *http1Server) track(hc *h1Conn) {
	s.mu.Lock()
	s.conns[hc] = struct{}{}
	s.mu.Unlock()
}

func (s *http1Server) untrack(hc *h1Conn) {
	s.mu.Lock()
	delete(s.conns, hc)
	s.mu.Unlock()
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// Connection states, for drain.
const (
	h1New    int32 = iota // no request read yet
	h1Active              // a request is read or served
	h1Idle                // waiting for the next request
	h1Closed              // closed by drain while idle
)

// h1Conn is one connection of the lean server. Its goroutine owns
// everything but the fields the disconnect watch shares (watchMu) and
// the 100-continue write (continueMu).
type h1Conn struct {
	s      *http1Server
	info   *connInfo
	conn   net.Conn
	ctx    context.Context // every request's
	cancel context.CancelCauseFunc
	state  atomic.Int32
	end    connEnd

	src  connSource
	br   *bufio.Reader
	out  connWriter
	bw   *bufio.Writer
	werr atomic.Bool // a write to the connection failed

	scan       headScan
	lastMethod string
	remoteAddr string
	tlsState   *tls.ConnectionState
	req        *http.Request // handed to the handler: its context is set once
	fast       http.Request  // what the fast parse fills, before adopt copies it into req
	w          h1Response
	hijacked   bool
	// writeDeadline is set when a handler set a write deadline, which
	// the next request must not inherit.
	writeDeadline bool

	continueMu       sync.Mutex // orders the 100 Continue against 1xx and the response
	canWriteContinue atomic.Bool

	// The disconnect watch (startWatch).
	watch    *time.Timer
	watchMu  sync.Mutex
	watched  sync.Cond
	running  bool // an exchange is in its handler
	reading  bool // the background read is in progress
	aborting bool
	oneByte  [1]byte
}

func (s *http1Server) newConn(c *connInfo) *h1Conn {
	hc := &h1Conn{s: s, info: c, conn: c.conn}
	ctx := context.WithValue(s.base, http.LocalAddrContextKey, c.conn.LocalAddr())
	hc.ctx, hc.cancel = context.WithCancelCause(s.connContext(ctx, c))
	hc.src.hc, hc.out.hc = hc, hc
	hc.br = getReader(&hc.src)
	hc.bw = getWriter(&hc.out)
	hc.w.init(hc)
	hc.req = (&http.Request{}).WithContext(hc.ctx)
	if ra := c.conn.RemoteAddr(); ra != nil {
		hc.remoteAddr = ra.String()
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		hc.tlsState = &st
	}
	hc.watched.L = &hc.watchMu
	hc.watch = time.AfterFunc(time.Hour, hc.watchFired)
	hc.watch.Stop()
	return hc
}

// release ends the connection: closes it unless hijacked or handed off,
// and gives back the buffers that did not go with it.
func (hc *h1Conn) release() {
	hc.watch.Stop()
	hc.cancel(context.Canceled)
	hc.w.release()
	switch hc.end {
	case connClosed:
		hc.bw.Flush()
		hc.conn.Close()
		putReader(hc.br)
		putWriter(hc.bw)
	case connHandedOff:
		putWriter(hc.bw) // the read buffer holds the preface
	}
}

// prefaceIsH2C reports whether the connection starts with the cleartext
// HTTP/2 preface. It reads no more than it must to tell: the first byte
// that differs decides for HTTP/1.
func (hc *h1Conn) prefaceIsH2C() bool {
	for n := 1; ; {
		_, err := hc.br.Peek(n)
		got, _ := hc.br.Peek(min(hc.br.Buffered(), len(h2cPreface)))
		if string(got) != h2cPreface[:len(got)] {
			return false
		}
		if len(got) == len(h2cPreface) {
			return true
		}
		if err != nil {
			return false
		}
		n = len(got) + 1
	}
}

// serveRequest reads one request and serves it. It reports whether the
// connection may carry another.
func (hc *h1Conn) serveRequest() bool {
	r, err := hc.readRequest()
	if err != nil {
		hc.refuse(err)
		return false
	}
	hc.state.CompareAndSwap(h1New, h1Active)
	w := &hc.w
	w.reset(r)
	if !w.expectations() {
		return false
	}
	hc.startWatch()
	completed := hc.runHandler(w, r)
	hc.stopWatch()
	if hc.hijacked {
		hc.end = connHijacked
		return false
	}
	if !completed {
		w.abandon()
		return false
	}
	w.finish()
	if hc.writeDeadline {
		hc.writeDeadline = false
		hc.conn.SetWriteDeadline(time.Time{})
	}
	if !w.reusable() {
		if w.bodyLimitHit || w.bodyClosedEarly() {
			hc.linger()
		}
		return false
	}
	return !hc.s.draining.Load()
}

// runHandler runs the handler; it reports false when the handler
// panicked (http.ErrAbortHandler aborts a response on purpose).
func (hc *h1Conn) runHandler(w *h1Response, r *http.Request) (completed bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				hc.s.log.Error("http1: panic serving request", "remote", hc.remoteAddr, "panic", p, "stack", string(debug.Stack()))
			}
			completed = false
		}
	}()
	if r.RequestURI == "*" && r.Method == http.MethodOptions && !hc.s.srv.DisableGeneralOptionsHandler {
		w.optionsAsterisk()
		return true
	}
	hc.s.srv.Handler.ServeHTTP(w, r)
	return true
}

// awaitRequest waits, for at most the idle timeout, for the next
// request's first 4 bytes, as net/http's server does (a connection that
// ends with fewer is closed without an answer). It reports false when
// the connection should close.
func (hc *h1Conn) awaitRequest() bool {
	if hc.br.Buffered() < 4 {
		hc.conn.SetReadDeadline(deadline(hc.s.idleTimeout))
		hc.state.Store(h1Idle)
		if hc.s.draining.Load() && hc.state.CompareAndSwap(h1Idle, h1Closed) {
			return false
		}
		_, err := hc.br.Peek(4)
		if !hc.state.CompareAndSwap(h1Idle, h1Active) || err != nil {
			return false
		}
	}
	hc.conn.SetReadDeadline(deadline(hc.s.readHeaderTimeout))
	return true
}

// connWriter writes to the connection and remembers a failure, which
// also cancels the connection's context: the client is gone.
type connWriter struct{ hc *h1Conn }

func (w *connWriter) Write(p []byte) (int, error) {
	n, err := w.hc.conn.Write(p)
	if err != nil && w.hc.werr.CompareAndSwap(false, true) {
		w.hc.cancel(errClientGone)
	}
	return n, err
}

// bufferedConn is a connection whose first bytes were read into r: a
// hijacked connection with bytes the client sent after its request, or
// a cleartext HTTP/2 connection handed off after its preface was read.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection underneath, when it can.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// unwrapConn returns the connection an HTTP/2 guard or a bufferedConn
// reads, which the registry knows.
func unwrapConn(c net.Conn) net.Conn {
	if g, ok := c.(*h2Guard); ok {
		c = g.Conn
	}
	if bc, ok := c.(*bufferedConn); ok {
		return bc.Conn
	}
	return c
}

// Pools of connection buffers, shared by the sockets of the process.
var (
	readerPool sync.Pool // *bufio.Reader of readBufferSize
	writerPool sync.Pool // *bufio.Writer of 4 KiB, to the connection
	chunkPool  sync.Pool // *bufio.Writer of bufferBeforeChunking, to a response
)

func getReader(r io.Reader) *bufio.Reader {
	if v := readerPool.Get(); v != nil {
		br := v.(*bufio.Reader)
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, readBufferSize)
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

func getWriter(w io.Writer) *bufio.Writer {
	if v := writerPool.Get(); v != nil {
		bw := v.(*bufio.Writer)
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, 4<<10)
}

func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writerPool.Put(bw)
}
