package listener

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/rawio"
)

// HTTP server timeouts.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 5 * time.Minute
)

// bound is one bound socket and the connections it accepted.
type bound struct {
	m        *Manager
	ln       net.Listener
	log      *slog.Logger
	active   atomic.Pointer[active]
	tlsBase  *tls.Config
	registry registry

	closing    chan struct{} // closed when draining starts
	acceptDone chan struct{} // closed when the accept loop has returned
	conns      sync.WaitGroup
	// handshaking counts the connections accepted but not yet in the
	// registry (TLS or ClientHello still being read); with the
	// registry's, the connections open, which the limit bounds.
	handshaking atomic.Int64
	force       context.Context // cancelled when the drain timeout expires
	kill        context.CancelFunc

	// httpMu guards the start of the HTTP servers (httpSrv set) against
	// drain (httpStopped set): a connection accepted before the socket
	// closed may reach startHTTP while the listener drains.
	httpMu      sync.Mutex
	httpStopped bool
	httpSrv     *http.Server
	httpQ       *connQueue
	httpDone    chan struct{}
	// h1 serves HTTP/1.x connections when lean is set (startHTTP):
	// http1server.go. httpSrv serves HTTP/2, and everything otherwise.
	h1   *http1Server
	lean bool
	// h2 serves HTTP/2 connections when lean and the Manager's options
	// allow (http2server.go); nil otherwise.
	h2 *h2Server
	// h2Table and h2MaxString are the HTTP/2 server's HPACK decoder
	// bounds, which its connections' h2Guards share (startHTTP).
	h2Table     uint32
	h2MaxString int
}

func newBound(m *Manager, ln net.Listener) *bound {
	force, kill := context.WithCancel(context.Background())
	b := &bound{
		m: m, ln: ln,
		log:        m.log.With("address", ln.Addr().String()),
		closing:    make(chan struct{}),
		acceptDone: make(chan struct{}),
		force:      force,
		kill:       kill,
	}
	b.tlsBase = b.serverTLS()
	b.h1 = newHTTP1Server(b.log, connValues)
	return b
}

// swap makes l the configuration of new connections and requests, and
// closes the open connections its network RBAC denies.
func (b *bound) swap(l *config.Listener) {
	prev := b.active.Load()
	a := newActive(l, prev, b.m.opts.Credentials)
	a.observed = b.observe(a, &httpHandler{b: b, a: a})
	b.active.Store(a)
	if prev != nil {
		prev.release()
	}
	b.enforce(a)
}

// serves reports whether b already serves l as swap(l) would make it: the
// same compiled listener (config.Recompile keeps the pointer of a
// listener whose resources did not change) with the tracer its tracing
// config would get now. Such a listener need not be swapped: its
// telemetry would be rebuilt alike and its open connections checked
// against the same RBAC.
func (b *bound) serves(l *config.Listener) bool {
	a := b.active.Load()
	if a == nil || a.Listener != l {
		return false
	}
	ps := b.m.opts.Tracers
	return ps == nil || ps.Current(a.tracer, tracingOf(l))
}

// serveHTTP hands a request to the handler of the configuration in force.
func (b *bound) serveHTTP(w http.ResponseWriter, r *http.Request) {
	b.m.activity.Add(1)
	if r.TLS == nil && r.ProtoMajor == 2 {
		// HTTP/2 over TLS is served behind an h2Guard, whose server does
		// not see the TLS: route matching on :scheme and the like do.
		if c := connOf(r); c != nil {
			r.TLS = c.tlsState
		}
	}
	b.active.Load().http.ServeHTTP(w, r)
}

func (b *bound) start() { go b.acceptLoop() }

func (b *bound) acceptLoop() {
	defer close(b.acceptDone)
	var delay time.Duration
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			b.log.Warn("accept failed; retrying", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-b.closing:
				return
			}
		}
		delay = 0
		if limit := b.m.maxConnections(); limit > 0 && b.handshaking.Load()+int64(b.registry.len()) >= int64(limit) {
			// Counted before the close, so that whoever sees it closed
			// sees it counted.
			b.m.opts.Telemetry.ConnectionRefused(b.ln.Addr().String())
			b.log.Debug("connection limit reached; closing a new connection", "limit", limit, "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		b.handshaking.Add(1)
		b.conns.Add(1)
		if !b.m.opts.StandardSocketIO {
			conn = rawio.Wrap(conn)
		}
		go b.serveConn(conn)
	}
}

// startHTTP starts, once, the HTTP servers of this socket's HTTP
// connections. They read the listener's config on every request, except
// the server settings — header read bound (headerlimit.go), codec,
// connection timeouts and HTTP/2 settings — which the first HTTP config
// fixes for the life of the socket. The http.Server, fed by httpQ,
// serves cleartext HTTP/2 (h2c) and HTTP/2 over TLS connections whose
// ALPN selected h2, as the codec allows; HTTP/1.x connections go to the
// lean server (h1, with the http.Server's settings), or to the
// http.Server too when the Manager's HTTP1Server says so.
//
// Go's HTTP/2 server bounds what RELIABILITY #11 asks for: streams beyond
// MaxConcurrentStreams are refused, handlers never run for more than that
// many streams per connection and a client that resets faster than
// handlers finish gets GOAWAY (ENHANCE_YOUR_CALM, CVE-2023-44487), header
// blocks split in CONTINUATION frames are bounded by MaxHeaderBytes
// (CVE-2023-45288), and control frames (PING, SETTINGS) queued beyond
// 10,000 close the connection.
//
// It reports false, starting nothing, once the socket drains.
func (b *bound) startHTTP(cfg *config.HTTP) bool {
	b.httpMu.Lock()
	defer b.httpMu.Unlock()
	if b.httpSrv == nil && !b.httpStopped {
		b.httpQ = newConnQueue(b.ln.Addr())
		b.httpSrv = &http.Server{
			Handler:           http.HandlerFunc(b.serveHTTP),
			Protocols:         protocols(cfg.Codec),
			HTTP2:             http2Config(cfg.HTTP2),
			MaxHeaderBytes:    headerReadBound(cfg.MaxRequestHeaderBytes),
			ReadHeaderTimeout: orDefault(cfg.RequestHeadersTimeout, readHeaderTimeout),
			IdleTimeout:       orDefault(cfg.IdleTimeout, idleTimeout),
			ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
			// Requests (and upgraded connections) end when the drain times out.
			BaseContext: func(net.Listener) context.Context { return b.force },
			ConnContext: b.connContext,
			ConnState:   b.connState,
		}
		b.h1.configure(b.httpSrv, b.force)
		b.lean = b.m.opts.HTTP1Server == HTTP1Lean && cfg.Codec != config.CodecHTTP2
		if b.m.opts.HTTP1Server == HTTP1Lean && !b.m.opts.StandardHTTP2Server && cfg.Codec != config.CodecHTTP1 {
			b.h2 = newH2Server(b.log, http.HandlerFunc(b.serveHTTP), b.httpSrv, b.force, cfg, connValues)
		}
		b.h2Table = cfg.HTTP2.HpackTableSize
		// Go's HTTP/2 server bounds a header string by its header list
		// bound: MaxHeaderBytes (its default when 0) and 320 bytes.
		b.h2MaxString = cmp.Or(b.httpSrv.MaxHeaderBytes, http.DefaultMaxHeaderBytes) + 320
		b.httpDone = make(chan struct{})
		go func() {
			defer close(b.httpDone)
			b.httpSrv.Serve(b.httpQ)
		}()
	}
	return b.httpSrv != nil
}

func protocols(codec config.Codec) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(codec != config.CodecHTTP2)
	p.SetHTTP2(codec != config.CodecHTTP1)
	p.SetUnencryptedHTTP2(codec != config.CodecHTTP1)
	return p
}

func http2Config(s config.HTTP2Settings) *http.HTTP2Config {
	if s.MaxConcurrentStreams == 0 {
		s.MaxConcurrentStreams = config.DefaultMaxConcurrentStreams
	}
	return &http.HTTP2Config{
		MaxConcurrentStreams:          int(s.MaxConcurrentStreams),
		MaxReceiveBufferPerStream:     int(s.InitialStreamWindowSize),
		MaxReceiveBufferPerConnection: int(s.InitialConnectionWindowSize),
		MaxDecoderHeaderTableSize:     int(s.HpackTableSize),
		MaxEncoderHeaderTableSize:     int(s.HpackTableSize),
		SendPingTimeout:               s.KeepaliveInterval,
		PingTimeout:                   s.KeepaliveTimeout,
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// stopAccepting closes the socket and waits for the accept loop to end.
// From then on, the lean HTTP/1.x server's responses close their
// connections (Connection: close), so a request in flight when the
// listener is removed ends its connection, whenever drain gets to run.
func (b *bound) stopAccepting() {
	b.h1.draining.Store(true)
	close(b.closing)
	b.ln.Close()
	<-b.acceptDone
}

// drain lets connections finish for at most timeout and then closes what
// is left. It returns when every connection is closed. Call stopAccepting
// first.
func (b *bound) drain(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	defer b.kill()
	b.h1.drain()
	if b.h2 != nil {
		b.h2.drain()
	}
	b.httpMu.Lock()
	b.httpStopped = true
	srv := b.httpSrv
	b.httpMu.Unlock()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-b.httpDone
	}
	tcpDone := make(chan struct{})
	go func() { b.conns.Wait(); close(tcpDone) }()
	select {
	case <-tcpDone:
	case <-ctx.Done():
		b.log.Warn("drain timeout; closing remaining connections")
		b.kill()
		b.h1.closeAll()
		if b.h2 != nil {
			b.h2.closeAll()
		}
		<-tcpDone
	}
	b.active.Load().release()
}
