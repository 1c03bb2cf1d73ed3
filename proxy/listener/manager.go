// Package listener runs weft-proxy's listeners: it binds the addresses of
// a compiled configuration, serves TCP (tcp_proxy) and HTTP
// (http_connection_manager) connections, and reconciles running listeners
// with every new configuration.
//
// A listener is identified by its address. A new configuration for a bound
// address is swapped in atomically: connections in progress keep the
// configuration they started with, new connections and requests use the
// new one. Removed listeners stop accepting and drain; their connections
// are closed only when the drain timeout expires.
//
// Listeners with a TLS context terminate mutual TLS (proxy/mtls) and run
// their network RBAC once the handshake is done, before a byte is read
// from the connection or an upstream is dialled; each socket keeps a
// registry of its open connections so that a swap whose RBAC denies a
// source closes that source's connections. HTTP listeners normalize
// request paths, strip mesh headers clients may not set and h2c upgrades,
// run HTTP RBAC, pass the verified peer to the app in
// x-forwarded-client-cert, match the route and hand the request to the
// router (proxy/router).
//
// Where to look: conn.go takes an accepted connection from handshake to
// its serving mode; inbound_authz.go holds every authorization decision
// (network and HTTP RBAC, closing connections a new RBAC denies,
// x-forwarded-client-cert); http.go is the HTTP request path and edge.go
// its request hygiene; tcp.go proxies TCP; outbound_transparent.go is
// the transparent proxy's outbound listener (original destination,
// passthrough). HTTP/1.x connections are served by the lean server:
// http1server.go (connection loop, drain), http1head.go (raw header scan:
// ambiguous framing), http1request.go (reading and validating requests),
// http1response.go and http1framing.go (the ResponseWriter), http1body.go
// (request bodies, 100-continue) and http1watch.go (noticing clients that
// go away); HTTP/2 by net/http's server (bound.go).
package listener

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/router"
	"github.com/weft-mesh/weft/proxy/telemetry"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// Clusters resolves cluster names on the request path. Get must be safe
// for concurrent use, must not block, and returns nil for unknown names.
type Clusters = router.Clusters

// Options configure a Manager.
type Options struct {
	Clusters Clusters
	// Credentials serve the handshakes of TLS listeners.
	Credentials mtls.Credentials
	// LocalID returns the local SPIFFE ID, sent as By in
	// x-forwarded-client-cert; nil or "" omits it.
	LocalID func() string
	// RouterHooks observe HTTP forwarding (telemetry); optional.
	RouterHooks router.Hooks
	// Telemetry counts and logs the listeners' requests and connections;
	// nil records nothing.
	Telemetry *telemetry.Telemetry
	// Tracers provide the tracers of HTTP listeners with a tracing
	// config; nil traces nothing (trace headers still pass through).
	Tracers *tracing.Providers
	// DrainTimeout bounds how long a removed listener (or every listener,
	// on Close) waits for its connections before closing them.
	DrainTimeout time.Duration
	// MaxConnections bounds the connections each listener holds open at
	// once; one accepted beyond it is closed at once and counted
	// (DefaultMaxConnections when 0, none when negative).
	MaxConnections int
	// HTTP1Server picks the server of HTTP/1.x connections: HTTP1Lean
	// (the zero value; http1server.go) or HTTP1NetHTTP (net/http's).
	HTTP1Server HTTP1Server
	// StandardSocketIO gives accepted connections net.Conn's reads and
	// writes; by default they are raw (see package proxy/internal/rawio).
	StandardSocketIO bool
	// StandardHTTP2Server serves HTTP/2 connections with net/http's
	// server; by default, when HTTP1Server is HTTP1Lean, the lean one
	// (http2server.go) serves them.
	StandardHTTP2Server bool
	Logger              *slog.Logger
}

// maxConnections is the connection limit of each listener; 0 for none.
func (m *Manager) maxConnections() int {
	switch n := m.opts.MaxConnections; {
	case n < 0:
		return 0
	case n == 0:
		return DefaultMaxConnections
	default:
		return n
	}
}

// DefaultMaxConnections is each listener's connection limit unless
// Options.MaxConnections says otherwise: far above what one instance's
// sidecar serves, below the file descriptors a flood could exhaust.
const DefaultMaxConnections = 10_000

// HTTP1Server names a server of downstream HTTP/1.x connections.
type HTTP1Server uint8

const (
	// HTTP1Lean serves each HTTP/1.x connection on one goroutine with
	// net/http's parser and a response writer of the listener's own.
	HTTP1Lean HTTP1Server = iota
	// HTTP1NetHTTP serves HTTP/1.x connections with net/http's server.
	HTTP1NetHTTP
)

// String is the name --http1-server takes.
func (s HTTP1Server) String() string {
	if s == HTTP1NetHTTP {
		return "net/http"
	}
	return "lean"
}

// ParseHTTP1Server parses a name String returns.
func ParseHTTP1Server(name string) (HTTP1Server, error) {
	switch name {
	case "lean", "":
		return HTTP1Lean, nil
	case "net/http":
		return HTTP1NetHTTP, nil
	}
	return 0, fmt.Errorf("HTTP/1 server %q: want lean or net/http", name)
}

// Manager owns the bound listeners.
//
// Prepare, Commit and Close are called from one goroutine at a time.
// Listeners may be called from any goroutine.
type Manager struct {
	opts   Options
	log    *slog.Logger
	router *router.Router
	drains sync.WaitGroup

	mu    sync.Mutex // guards bound and warming against Listeners
	bound map[string]*bound
	// warming are the listeners of the last configuration committed that
	// wait for certificates (config.Runtime.MissingCertificates), by key.
	warming map[string]Info

	activity atomic.Uint64 // TCP connections proxied and HTTP requests served
}

// Activity counts the TCP connections proxied and the HTTP requests
// served by every listener so far: a change tells traffic from idleness.
// Connections that end before carrying traffic (a health check's TCP
// connect, a failed handshake) do not count.
func (m *Manager) Activity() uint64 { return m.activity.Load() }

// NewManager returns a Manager with no listeners.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "listener")
	return &Manager{opts: opts, log: log, router: router.New(opts.Clusters, opts.RouterHooks, log), bound: make(map[string]*bound)}
}

// Plan is a prepared reconciliation: every new address is bound, nothing
// is serving yet. Call Commit to apply it or Abort to release the sockets.
type Plan struct {
	m     *Manager
	rt    *config.Runtime
	fresh map[string]*bound
}

// Prepare binds the addresses of rt that are not bound yet, except those
// of listeners still warming (missing certificates: they are bound by the
// first configuration that has them, as Envoy warms a listener until its
// secrets arrive). If any bind fails it releases the others and returns
// an error naming each failed listener; the running listeners are
// untouched either way.
func (m *Manager) Prepare(rt *config.Runtime) (*Plan, error) {
	p := &Plan{m: m, rt: rt, fresh: make(map[string]*bound)}
	var errs []error
	for _, l := range rt.Listeners {
		k := key(l)
		if m.lookup(k) != nil || len(rt.MissingCertificates(l)) > 0 {
			continue
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", l.Name, err))
			continue
		}
		p.fresh[k] = newBound(m, ln)
	}
	if len(errs) > 0 {
		p.Abort()
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Abort releases the sockets bound by Prepare.
func (p *Plan) Abort() {
	for _, b := range p.fresh {
		b.ln.Close()
	}
}

// Commit swaps configurations into running listeners, starts the new ones
// and drains the removed ones. A running listener given the
// *config.Listener it already serves is left as it is (see bound.serves);
// so is one whose new configuration is warming, while a new listener that
// is warming is not started. It does not block on draining.
func (p *Plan) Commit() {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	wanted := make(map[string]bool, len(p.rt.Listeners))
	warming := make(map[string]Info)
	for _, l := range p.rt.Listeners {
		k := key(l)
		wanted[k] = true
		if missing := p.rt.MissingCertificates(l); len(missing) > 0 {
			warming[k] = Info{Name: l.Name, Address: l.Address, Mode: l.Mode.String(), TLS: l.TLS != nil, Warming: missing}
			if _, was := m.warming[k]; !was {
				m.log.Info("listener warming: waiting for its certificates; a running one keeps its previous configuration",
					"listener", l.Name, "address", l.Address, "missing", missing, "running", m.bound[k] != nil)
			}
			continue
		}
		if b, ok := p.fresh[k]; ok {
			b.swap(l)
			m.bound[k] = b
			b.start()
			m.log.Info("listener started", "listener", l.Name, "address", b.ln.Addr().String(), "mode", l.Mode)
			continue
		}
		if b := m.bound[k]; !b.serves(l) {
			b.swap(l)
		}
	}
	for k, b := range m.bound {
		if !wanted[k] {
			delete(m.bound, k)
			m.log.Info("listener removed; draining", "listener", b.active.Load().Name, "address", b.ln.Addr().String())
			m.drain(b)
		}
	}
	m.warming = warming
}

// Close stops every listener, drains them for at most the drain timeout
// and waits until all connections are closed. It is idempotent.
func (m *Manager) Close() {
	m.mu.Lock()
	for k, b := range m.bound {
		delete(m.bound, k)
		m.drain(b)
	}
	m.mu.Unlock()
	m.drains.Wait()
}

// drain stops b accepting at once and drains its connections in the
// background.
func (m *Manager) drain(b *bound) {
	b.stopAccepting()
	m.drains.Add(1)
	go func() {
		defer m.drains.Done()
		b.drain(m.opts.DrainTimeout)
	}()
}

func (m *Manager) lookup(k string) *bound {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bound[k]
}

// CertificatesInUse names the certificates (received over SDS) that the
// running listeners present, each listener by the configuration it runs:
// a listener whose new configuration is warming still runs its previous
// one, and needs that one's certificates until it switches.
func (m *Manager) CertificatesInUse() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	in := map[string]bool{}
	for _, b := range m.bound {
		if l := b.active.Load(); l.TLS != nil {
			for _, name := range l.TLS.Certificates {
				in[name] = true
			}
		}
	}
	return in
}

// Info describes a running listener.
type Info struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// BoundAddress is the socket's actual address (differs from Address
	// when the configured port is 0).
	BoundAddress string `json:"bound_address"`
	Mode         string `json:"mode"`
	// TLS reports whether the listener terminates TLS: mutual TLS in the
	// mesh, or TLS for clients outside it.
	TLS bool `json:"tls"`
	// Warming are the certificates over SDS the listener's latest
	// configuration waits for; while any is missing a new listener is
	// not bound (BoundAddress is empty) and a running one serves its
	// previous configuration, which the other fields describe.
	Warming []string `json:"warming,omitempty"`
}

// Listeners describes the running and the warming listeners, sorted by
// name.
func (m *Manager) Listeners() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.bound))
	for k, b := range m.bound {
		l := b.active.Load()
		out = append(out, Info{Name: l.Name, Address: l.Address, BoundAddress: b.ln.Addr().String(), Mode: l.Mode.String(), TLS: l.TLS != nil,
			Warming: m.warming[k].Warming})
	}
	for k, w := range m.warming {
		if m.bound[k] == nil {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// key identifies a listener by address; listeners on port 0 (an ephemeral
// port each) are told apart by name.
func key(l *config.Listener) string {
	if _, port, err := net.SplitHostPort(l.Address); err == nil && port == "0" {
		return l.Name + "@" + l.Address
	}
	return l.Address
}
