package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/relay"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/rbac"
	"github.com/weft-mesh/weft/proxy/telemetry"
)

// handshakeTimeout bounds a downstream TLS handshake.
const handshakeTimeout = 10 * time.Second

// active is the configuration a bound socket serves: the compiled
// listener, the TLS configurations built from it and its telemetry. It is
// immutable once built.
type active struct {
	*config.Listener
	tls *tls.Config // nil for plaintext listeners
	// sniTLS are the TLS configurations of the SNI chains that terminate
	// TLS (a terminating gateway's), by chain.
	sniTLS map[*config.Listener]*tls.Config
	observed
}

// newActive builds the serving state of l, reusing prev's TLS
// configurations when their TLS contexts did not change.
func newActive(l *config.Listener, prev *active, creds mtls.Credentials) *active {
	a := &active{Listener: l}
	switch {
	case l.TLS == nil:
	case prev != nil && prev.tls != nil && prev.Listener.TLS.Equal(l.TLS):
		a.tls = prev.tls
	default:
		a.tls = creds.ServerConfig(l.TLS)
	}
	if l.SNI != nil {
		a.sniTLS = sniTLSConfigs(l.SNI, prev, creds)
	}
	return a
}

// connInfo is what the proxy knows of a downstream connection once its
// handshake is done. It is immutable once served, except for hijacked.
type connInfo struct {
	raw  net.Conn // the accepted socket: closing it ends the connection at once
	conn net.Conn // what is served: raw, or the *tls.Conn over it
	// who is the principal and port for RBAC decisions.
	who rbac.Request
	// xfcc is the x-forwarded-client-cert value set on requests to the
	// app; nil for connections without a verified peer.
	xfcc     []string
	hijacked atomic.Bool
	// leanHTTP1 is set, before its first request, on a connection the
	// lean HTTP/1.x server serves.
	leanHTTP1 bool
	// dst is the original destination of a connection accepted on a
	// transparent listener; toSelf says it was this listener itself.
	dst    netip.AddrPort
	toSelf bool
	// serverName is the TLS server name a connection to a mesh gateway's
	// listener (config.ModeSNI) asked for.
	serverName string
	// tlsState is the TLS connection's state, for requests whose server
	// did not see the TLS (HTTP/2 behind an h2Guard); nil without TLS.
	tlsState *tls.ConnectionState
}

func newConnInfo(raw, conn net.Conn, localID string) *connInfo {
	c := &connInfo{raw: raw, conn: conn}
	if a, ok := raw.LocalAddr().(*net.TCPAddr); ok {
		c.who.DestinationPort = uint32(a.Port)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		c.tlsState = &cs
		if id, ok := mtls.PeerID(&cs); ok {
			c.who.Authenticated, c.who.Peer = true, id.String()
			c.xfcc = []string{xfccValue(localID, c.who.Peer)}
		}
	}
	return c
}

// serveConn handshakes (for TLS listeners), authorizes and serves one
// accepted connection. Nothing is read from a connection, let alone
// forwarded, before its handshake and network RBAC have passed.
func (b *bound) serveConn(raw net.Conn) {
	defer b.conns.Done()
	registered := sync.OnceFunc(func() { b.handshaking.Add(-1) })
	defer registered()
	conn := raw
	if b.active.Load().tls != nil {
		ctx, cancel := context.WithTimeout(b.force, handshakeTimeout)
		if !awaitFirstByte(ctx, raw) {
			cancel()
			raw.Close()
			return
		}
		// The relay writes the records of each copy together
		// (relay.BatchConn); HTTP's writes pass straight through.
		tc := tls.Server(relay.NewBatchConn(raw), b.tlsBase)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			b.log.Debug("TLS handshake failed; closing", "remote", raw.RemoteAddr(), "error", err)
			raw.Close()
			return
		}
		conn = tc
	}
	var serverName string
	if a := b.active.Load(); a.SNI != nil {
		name, opened, err := b.openSNI(a, raw)
		switch {
		case errors.Is(err, errUnrecognizedName):
			b.log.Debug("SNI listener: no filter chain takes the server name; answering unrecognized_name", "remote", raw.RemoteAddr().String(), "server_name", name)
			refuseServerName(raw)
			return
		case err != nil:
			b.log.Debug("SNI listener: closing", "remote", raw.RemoteAddr().String(), "server_name", name, "error", err)
			raw.Close()
			return
		}
		serverName, conn = name, opened
	}
	c := newConnInfo(raw, conn, b.localID())
	c.serverName = serverName
	if b.active.Load().Transparent != nil {
		b.recordOriginalDst(c)
	}
	// Register before deciding: a swap that lands between the two then
	// either is seen here or sees this connection (enforce).
	b.registry.add(c)
	registered()
	a := b.active.Load()
	if !b.admit(a, c) {
		return
	}
	l := chainOf(a, c)
	if l != nil && a.SNI != nil && !sameTermination(l, conn) {
		b.log.Debug("the connection's filter chain changed whether it terminates TLS; closing", "listener", a.Name, "server_name", c.serverName)
		l = nil
	}
	if l == nil {
		b.log.Debug("no filter chain matches the connection; closing", "listener", a.Name, "destination", c.dst.String(), "server_name", c.serverName)
		l = noChain
	}
	switch l.Mode {
	case config.ModeTCP:
		defer b.registry.remove(conn)
		b.serveTCP(c, a, l)
	case config.ModeOriginalDst:
		defer b.registry.remove(conn)
		b.servePassthrough(c, a, l)
	case config.ModeHTTP:
		if !b.startHTTP(l.HTTP) {
			b.registry.remove(conn)
			raw.Close()
			return
		}
		b.serveHTTPConn(c)
	default:
		b.registry.remove(conn)
		raw.Close()
	}
}

func (b *bound) localID() string {
	if b.m.opts.LocalID == nil {
		return ""
	}
	return b.m.opts.LocalID()
}

// serverTLS returns the socket's TLS configuration: it defers to the
// active listener's per handshake, and keeps its session ticket keys for
// the life of the socket so that sessions resume across configuration
// swaps (and are re-verified by the active VerifyConnection).
func (b *bound) serverTLS() *tls.Config {
	return &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if a := b.active.Load(); a.tls != nil {
			return a.tls, nil
		}
		return nil, errPlaintext
	}}
}

var errPlaintext = errors.New("the listener no longer terminates TLS")

// serveHTTPConn serves an HTTP connection: HTTP/1.x on this goroutine
// with the lean server, HTTP/2 (by ALPN, or an h2c preface the lean
// server read) with the http.Server. The http.Server's ConnState forgets
// the connections it served; connections the lean server closed are
// forgotten here, hijacked ones by the upgrade handler (forgetHijacked).
func (b *bound) serveHTTPConn(c *connInfo) {
	if negotiatedH2(c.conn) && b.h2 != nil {
		b.serveLeanHTTP2(c, c.conn)
		return
	}
	if !b.lean || negotiatedH2(c.conn) {
		b.handOffHTTP(c, c.conn)
		return
	}
	c.leanHTTP1 = true
	end := b.h1.serve(c, func(conn net.Conn) {
		c.leanHTTP1 = false
		if b.h2 != nil {
			b.serveLeanHTTP2(c, conn)
			return
		}
		b.handOffHTTP(c, conn)
	})
	if end == connClosed {
		b.registry.remove(c.conn)
	}
}

// serveLeanHTTP2 serves an HTTP/2 connection with the lean server, on
// this goroutine, refusing HTTP/2 over TLS that RFC 9113 §9.2 does not
// allow.
func (b *bound) serveLeanHTTP2(c *connInfo, conn net.Conn) {
	defer b.registry.remove(c.conn)
	if c.tlsState != nil {
		if err := checkH2TLS(*c.tlsState); err != nil {
			b.log.Info("HTTP/2 connection refused", "remote", conn.RemoteAddr().String(), "error", err)
			refuseH2(conn)
			c.raw.Close()
			return
		}
	}
	b.h2.serve(c, conn, nil)
}

// handOffHTTP gives a connection to the http.Server.
func (b *bound) handOffHTTP(c *connInfo, conn net.Conn) {
	conn, err := b.http2Conn(conn)
	if err != nil {
		b.log.Info("HTTP/2 connection refused", "remote", conn.RemoteAddr().String(), "error", err)
		b.registry.remove(c.conn)
		refuseH2(conn)
		c.raw.Close()
		return
	}
	if !b.httpQ.push(conn) {
		b.registry.remove(c.conn)
		c.raw.Close()
	}
}

// http2Conn wraps, in an h2Guard (h2guard.go), the connections the
// http.Server may serve as HTTP/2: TLS ones whose ALPN selected h2, and
// cleartext ones, which it serves as h2c when they start with the client
// preface (a guard passes any other through untouched). TLS connections
// speaking HTTP/1.1 stay as they are: the http.Server needs the *tls.Conn.
// It fails for HTTP/2 over TLS that RFC 9113 §9.2 does not allow.
func (b *bound) http2Conn(conn net.Conn) (net.Conn, error) {
	// The lean server hands the http.Server only connections that
	// started with the HTTP/2 preface; TLS ones chose h2 by ALPN.
	mustBeH2 := b.lean
	if tc, ok := conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		if cs.NegotiatedProtocol != "h2" {
			return conn, nil
		}
		if err := checkH2TLS(cs); err != nil {
			return conn, err
		}
		mustBeH2 = true
	}
	g := guardHTTP2(conn, mustBeH2, b.h2Table, b.h2MaxString)
	g.onFlood = func() {
		b.log.Warn("HTTP/2 connection ended: PING and SETTINGS frames without requests, past the budget",
			"remote", conn.RemoteAddr().String(), "burst", controlBurst, "per_second", controlRate)
	}
	return g, nil
}

func negotiatedH2(conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// connContext puts the connection's info in the contexts of its requests
// (the http.Server's ConnContext).
func (b *bound) connContext(ctx context.Context, conn net.Conn) context.Context {
	c := b.registry.get(unwrapConn(conn))
	if c == nil {
		return ctx
	}
	return connValues(ctx, c)
}

// connValues adds c's values to ctx: its peer for telemetry, and c.
func connValues(ctx context.Context, c *connInfo) context.Context {
	if c.who.Authenticated {
		ctx = telemetry.WithPeer(ctx, telemetry.PeerFromSPIFFE(c.who.Peer))
	}
	return context.WithValue(ctx, connKey{}, c)
}

// connState forgets connections the HTTP server closed, and notes
// hijacked ones (upgrades), which the upgrade handler forgets when done.
func (b *bound) connState(conn net.Conn, s http.ConnState) {
	conn = unwrapConn(conn)
	switch s {
	case http.StateClosed:
		b.registry.remove(conn)
	case http.StateHijacked:
		if c := b.registry.get(conn); c != nil {
			c.hijacked.Store(true)
		}
	}
}

type connKey struct{}

// connOf returns the info of the connection a request arrived on.
func connOf(r *http.Request) *connInfo {
	c, _ := r.Context().Value(connKey{}).(*connInfo)
	return c
}
