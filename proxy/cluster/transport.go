package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/http1client"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/relay"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// Transport defaults.
const (
	defaultIdleTimeout  = 60 * time.Second
	maxIdleConnsPerHost = 256
	// maxResponseHeaderBytes bounds a response's header block, HTTP/2's
	// as HTTP/1.1's.
	maxResponseHeaderBytes = http1client.MaxResponseHeaderBytes
	// maxInlineBody is the largest request body written before the
	// response is read, and max1xxResponses bounds the informational
	// responses before a final one: HTTP/2's as HTTP/1.1's.
	maxInlineBody   = http1client.MaxInlineBody
	max1xxResponses = http1client.Max1xxResponses
)

// errClientClosed is returned for requests to a client that a change of
// the cluster's transport settings retired.
var errClientClosed = http1client.ErrClosed

// Scheme is the URL scheme of requests to the cluster: "https" when it
// has a TLS context (the transport then dials mutual TLS), else "http".
func (c *Cluster) Scheme() string {
	if c.state.Load().tls != nil {
		return "https"
	}
	return "http"
}

// Dial connects to an endpoint of the cluster for TCP proxying within
// the connect timeout and max_connections (ErrOverflow at the limit),
// completing the mTLS handshake when the cluster has a TLS context. A
// failed handshake is reported as a dial error.
func (c *Cluster) Dial(ctx context.Context, addr string) (net.Conn, error) {
	st := c.state.Load()
	raw, err := c.dialLimited(ctx, st, addr, false)
	if err != nil || st.tls == nil {
		return raw, err
	}
	// The relay writes the records of each copy together (relay.BatchConn).
	return handshake(ctx, relay.NewBatchConn(raw), st.tls, st.cfg.ConnectTimeout)
}

func handshake(ctx context.Context, raw net.Conn, tlsCfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn := tls.Client(raw, tlsCfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raw.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return conn, nil
}

// Transport returns the cluster's pooled transport for a request that
// arrived over HTTP/2 (downstreamH2) or not: the cluster's protocol
// decides, and use_downstream_protocol_config follows the request. It
// stays the same across updates unless the connect timeout, protocol,
// idle timeout or TLS context changes.
func (c *Cluster) Transport(downstreamH2 bool) http.RoundTripper {
	return c.state.Load().upstream.transport(downstreamH2)
}

// upstream holds a cluster's transports, built on first use so that
// clusters used only for TCP cost nothing.
type upstream struct {
	c              *Cluster
	connectTimeout time.Duration
	idleTimeout    time.Duration
	protocol       config.Protocol
	tlsParams      *mtls.Client
	tls            *tls.Config
	// http1 serves HTTP/1.1; h1 is its fallback for requests it does not
	// take (see http1client.Client). http2 serves HTTP/2 (h2 when the cluster's
	// Options.StandardHTTP2Client says so), with h2 as its fallback.
	http1  *http1client.Client
	http2  *http2Client
	h1tls  atomic.Pointer[tls.Config]
	h2tls  atomic.Pointer[tls.Config]
	h1, h2 lazyTransport
}

func newUpstream(c *Cluster, cfg *config.Cluster, tlsCfg *tls.Config) *upstream {
	u := &upstream{c: c, connectTimeout: cfg.ConnectTimeout, idleTimeout: cfg.IdleTimeout, protocol: cfg.Protocol, tlsParams: cfg.TLS, tls: tlsCfg}
	if u.idleTimeout <= 0 {
		u.idleTimeout = defaultIdleTimeout
	}
	u.http1 = http1client.New(http1client.Options{Dial: u.dialHTTP1, IdleTimeout: u.idleTimeout,
		MaxIdlePerHost: maxIdleConnsPerHost, Fallback: u.http1Fallback})
	if !c.standardHTTP2 {
		u.http2 = newHTTP2Client(u.dialHTTP2, u.idleTimeout, func() http.RoundTripper { return u.netHTTP2() })
	}
	return u
}

// http1Fallback is the http.Transport of the HTTP/1.1 requests the lean
// client does not take, built on first use.
func (u *upstream) http1Fallback() *http.Transport {
	return u.h1.get(func() *http.Transport { return u.newTransport(false, false) })
}

// dialHTTP2 connects to an endpoint for HTTP/2 within the cluster's
// limits: cleartext with prior knowledge, or mutual TLS offering only h2.
func (u *upstream) dialHTTP2(ctx context.Context, addr string) (net.Conn, error) {
	raw, err := u.c.dialLimited(ctx, u.c.state.Load(), addr, true)
	if err != nil || u.tls == nil {
		return raw, err
	}
	conn, err := handshake(ctx, raw, u.h2TLS(), u.connectTimeout)
	if err != nil {
		return nil, err
	}
	if p := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
		conn.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raw.RemoteAddr(), Err: fmt.Errorf("TLS handshake: the upstream chose protocol %q, not h2", p)}
	}
	return conn, nil
}

// h2TLS is the cluster's TLS configuration offering only h2.
func (u *upstream) h2TLS() *tls.Config {
	if t := u.h2tls.Load(); t != nil {
		return t
	}
	t := u.tls.Clone()
	t.NextProtos = []string{"h2"}
	u.h2tls.Store(t)
	return t
}

// netHTTP2 is net/http's HTTP/2 transport for the cluster.
func (u *upstream) netHTTP2() *http.Transport {
	return u.h2.get(func() *http.Transport { return u.newTransport(true, false) })
}

// http2Transport is the cluster's HTTP/2 client.
func (u *upstream) http2Transport() http.RoundTripper {
	if u.http2 != nil {
		return u.http2
	}
	return u.netHTTP2()
}

// dialHTTP1 connects to an endpoint for HTTP/1.1 within the cluster's
// limits (waiting as a pending request at max_connections), with mutual
// TLS offering only http/1.1 when the cluster has a TLS context.
func (u *upstream) dialHTTP1(ctx context.Context, addr string) (net.Conn, error) {
	raw, err := u.c.dialLimited(ctx, u.c.state.Load(), addr, true)
	if err != nil || u.tls == nil {
		return raw, err
	}
	return handshake(ctx, raw, u.h1TLS(), u.connectTimeout)
}

// h1TLS is the cluster's TLS configuration offering only http/1.1.
func (u *upstream) h1TLS() *tls.Config {
	if t := u.h1tls.Load(); t != nil {
		return t
	}
	t := u.tls.Clone()
	t.NextProtos = []string{"http/1.1"}
	u.h1tls.Store(t)
	return t
}

func (u *upstream) sameSettings(cfg *config.Cluster) bool {
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	return u.connectTimeout == cfg.ConnectTimeout && u.idleTimeout == idle && u.protocol == cfg.Protocol && u.tlsParams.Equal(cfg.TLS)
}

func (u *upstream) transport(downstreamH2 bool) http.RoundTripper {
	switch u.protocol {
	case config.HTTP2:
		return u.http2Transport()
	case config.Downstream:
		if downstreamH2 {
			return u.http2Transport()
		}
	case config.Auto:
		return u.h2.get(func() *http.Transport { return u.newTransport(true, true) })
	}
	return u.http1
}

// closeIdle closes the idle pooled connections. With retire, the
// upstream is being replaced: its HTTP/1.1 client also stops pooling.
func (u *upstream) closeIdle(retire bool) {
	u.http1.CloseIdle(retire)
	if u.http2 != nil {
		u.http2.closeIdle(retire)
	}
	u.h1.closeIdle()
	u.h2.closeIdle()
}

// newTransport returns a keep-alive transport for proxying: no
// environment proxy, no transparent compression, a deep idle pool, dials
// within the cluster's limits. HTTP/2 is h2 over TLS or cleartext with
// prior knowledge (h2c); over TLS, ALPN offers only the protocol spoken,
// or both when auto negotiates.
func (u *upstream) newTransport(h2, auto bool) *http.Transport {
	protocols := new(http.Protocols)
	t := &http.Transport{
		Protocols:             protocols,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       u.idleTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     h2,
	}
	dialRaw := func(ctx context.Context, _, addr string) (net.Conn, error) {
		return u.c.dialLimited(ctx, u.c.state.Load(), addr, true)
	}
	if u.tls == nil {
		t.DialContext = dialRaw
		protocols.SetHTTP1(!h2)
		protocols.SetUnencryptedHTTP2(h2)
		return t
	}
	tlsCfg := u.tls.Clone()
	switch {
	case auto:
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true)
	case h2:
		tlsCfg.NextProtos = []string{"h2"}
		protocols.SetHTTP2(true)
	default:
		tlsCfg.NextProtos = []string{"http/1.1"}
		protocols.SetHTTP1(true)
	}
	// http.Transport speaks h2 on a custom TLS dial when the returned
	// *tls.Conn negotiated it.
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dialRaw(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return handshake(ctx, raw, tlsCfg, u.connectTimeout)
	}
	return t
}

// lazyTransport builds its http.Transport once, on first use.
type lazyTransport struct {
	once sync.Once
	t    atomic.Pointer[http.Transport]
}

func (l *lazyTransport) get(build func() *http.Transport) *http.Transport {
	if t := l.t.Load(); t != nil {
		return t
	}
	l.once.Do(func() { l.t.Store(build()) })
	return l.t.Load()
}

func (l *lazyTransport) closeIdle() {
	if t := l.t.Load(); t != nil {
		t.CloseIdleConnections()
	}
}
