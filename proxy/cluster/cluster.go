// Package cluster holds the data plane's upstream clusters: each an
// immutable endpoint set behind a lock-free picker, plus a pooled HTTP
// transport that survives configuration updates while the cluster exists.
// Clusters with a TLS context dial mutual TLS, for TCP and HTTP alike.
package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/balancer/roundrobin"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// Cluster is one upstream cluster. Its methods are safe for concurrent use
// and do not lock: every update publishes a new immutable state.
type Cluster struct {
	name  string
	creds mtls.Credentials
	state atomic.Pointer[state]
}

type state struct {
	cfg       *config.Cluster
	picker    balancer.Picker
	tls       *tls.Config // nil without a TLS context
	transport *lazyTransport
}

func newCluster(cfg *config.Cluster, creds mtls.Credentials) *Cluster {
	c := &Cluster{name: cfg.Name, creds: creds}
	tlsCfg := c.clientTLS(cfg)
	c.state.Store(&state{cfg: cfg, picker: newPicker(cfg.Endpoints), tls: tlsCfg, transport: newLazyTransport(cfg, tlsCfg)})
	return c
}

func (c *Cluster) clientTLS(cfg *config.Cluster) *tls.Config {
	if cfg.TLS == nil {
		return nil
	}
	return c.creds.ClientConfig(cfg.TLS)
}

// Name returns the cluster name.
func (c *Cluster) Name() string { return c.name }

// Pick chooses an endpoint, or fails with balancer.ErrNoEndpoint.
func (c *Cluster) Pick() (balancer.PickResult, error) {
	return c.state.Load().picker.Pick(balancer.PickInfo{})
}

// ConnectTimeout bounds dials to the cluster's endpoints.
func (c *Cluster) ConnectTimeout() time.Duration { return c.state.Load().cfg.ConnectTimeout }

// Scheme is the URL scheme of requests to the cluster: "https" when it
// has a TLS context (the transport then dials mutual TLS), else "http".
func (c *Cluster) Scheme() string {
	if c.state.Load().tls != nil {
		return "https"
	}
	return "http"
}

// Dial connects to an endpoint of the cluster within the connect timeout,
// completing the mTLS handshake when the cluster has a TLS context. A
// failed handshake is reported as a dial error.
func (c *Cluster) Dial(ctx context.Context, addr string) (net.Conn, error) {
	st := c.state.Load()
	d := net.Dialer{Timeout: st.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return dial(ctx, &d, st.tls, st.cfg.ConnectTimeout, addr)
}

func dial(ctx context.Context, d *net.Dialer, tlsCfg *tls.Config, timeout time.Duration, addr string) (net.Conn, error) {
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || tlsCfg == nil {
		return raw, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn := tls.Client(raw, tlsCfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raw.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return conn, nil
}

// Transport returns the cluster's pooled keep-alive HTTP transport, built
// on first use. It stays the same across updates unless the connect
// timeout, upstream protocol or TLS context changes.
func (c *Cluster) Transport() *http.Transport { return c.state.Load().transport.get() }

// update publishes cfg, keeping the picker when the endpoints did not
// change and the transport when its settings did not.
func (c *Cluster) update(cfg *config.Cluster) {
	old := c.state.Load()
	next := &state{cfg: cfg, picker: old.picker, tls: old.tls, transport: old.transport}
	if !slices.Equal(old.cfg.Endpoints, cfg.Endpoints) {
		next.picker = newPicker(cfg.Endpoints)
	}
	if !old.cfg.TLS.Equal(cfg.TLS) {
		next.tls = c.clientTLS(cfg)
	}
	if !old.transport.sameSettings(cfg) {
		next.transport = newLazyTransport(cfg, next.tls)
	}
	c.state.Store(next)
	if next.transport != old.transport {
		old.transport.closeIdle()
	}
}

func (c *Cluster) close() { c.state.Load().transport.closeIdle() }

// newPicker builds a round-robin picker over the healthy endpoints of the
// highest priority (lowest number) that has any.
func newPicker(endpoints []config.Endpoint) balancer.Picker {
	best, found := uint32(0), false
	for _, e := range endpoints {
		if e.Healthy && (!found || e.Priority < best) {
			best, found = e.Priority, true
		}
	}
	var eps []balancer.Endpoint
	for _, e := range endpoints {
		if e.Healthy && e.Priority == best {
			eps = append(eps, balancer.Endpoint{Address: e.Address, Weight: e.Weight})
		}
	}
	return roundrobin.New(eps)
}

// lazyTransport builds its http.Transport on first use, so that clusters
// used only for TCP cost nothing.
type lazyTransport struct {
	connectTimeout time.Duration
	http2          bool
	tlsParams      *mtls.Client
	tls            *tls.Config
	once           sync.Once
	t              atomic.Pointer[http.Transport]
}

func newLazyTransport(cfg *config.Cluster, tlsCfg *tls.Config) *lazyTransport {
	return &lazyTransport{connectTimeout: cfg.ConnectTimeout, http2: cfg.HTTP2, tlsParams: cfg.TLS, tls: tlsCfg}
}

func (l *lazyTransport) sameSettings(cfg *config.Cluster) bool {
	return l.connectTimeout == cfg.ConnectTimeout && l.http2 == cfg.HTTP2 && l.tlsParams.Equal(cfg.TLS)
}

func (l *lazyTransport) get() *http.Transport {
	l.once.Do(func() { l.t.Store(newTransport(l.connectTimeout, l.http2, l.tls)) })
	return l.t.Load()
}

func (l *lazyTransport) closeIdle() {
	if t := l.t.Load(); t != nil {
		t.CloseIdleConnections()
	}
}

// newTransport returns a keep-alive transport for proxying: no
// environment proxy, no transparent compression, a deep idle pool. With
// tlsCfg it dials mutual TLS and speaks HTTP/2 when ALPN selects h2,
// HTTP/1.1 otherwise; without, HTTP/1.1 or cleartext HTTP/2 (prior
// knowledge) as configured.
func newTransport(connectTimeout time.Duration, http2 bool, tlsCfg *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		Protocols:             protocols,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	switch {
	case tlsCfg != nil:
		tlsCfg = tlsCfg.Clone()
		if len(tlsCfg.NextProtos) == 0 && http2 {
			tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		}
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true)
		t.ForceAttemptHTTP2 = true
		// http.Transport speaks h2 on a custom TLS dial when the returned
		// *tls.Conn negotiated it.
		t.DialTLSContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dial(ctx, dialer, tlsCfg, connectTimeout, addr)
		}
	case http2:
		protocols.SetUnencryptedHTTP2(true)
	default:
		protocols.SetHTTP1(true)
	}
	return t
}
