// Package proxy is weft-proxy: a sidecar configured only over xDS.
//
// Run wires the parts: the xDS client (proxy/xds) receives resources, the
// compile step (proxy/config) turns them into an immutable runtime
// configuration, and the cluster (proxy/cluster: load balancing in
// proxy/balancer, circuit breakers, outlier detection in proxy/outlier)
// and listener (proxy/listener) managers install it; HTTP listeners
// route requests (proxy/route) and forward them through the router
// (proxy/router: retries in proxy/retry, timeouts, local replies in
// proxy/localreply); the identity manager
// (proxy/identity) obtains and renews the leaf certificate that mTLS
// listeners and clusters present — and, for a terminating gateway, one
// more manager per linked service obtains that service's leaf, which its
// chains present; for an ingress gateway with TLS, one more obtains the
// leaf with its DNS names that its listeners present to outside clients
// (ingress.go) — and the trust bundles received over SDS
// are what they verify peers against (proxy/mtls); an API gateway's
// listeners present certificates received over SDS to clients outside
// the mesh instead (proxy/mtls, certificates.go); the admin API
// (proxy/admin) reports readiness, the accepted configuration, the
// clusters, the certificates and the metrics. Every HTTP request is
// traced, counted and logged (proxy/telemetry), and TCP connections
// counted; while an operator taps, matching requests are streamed to the
// control plane (proxy/tap).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/tap"
	"github.com/weft-mesh/weft/proxy/telemetry"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
	"github.com/weft-mesh/weft/proxy/xds"
)

// Proxy is one weft-proxy instance. Create it with New, start it with Run.
type Proxy struct {
	opts      Options
	log       *slog.Logger
	clusters  *cluster.Manager
	listeners *listener.Manager
	xds       *xds.Client
	identity  *identity.Manager
	signer    *identity.GRPCSigner
	tap       *tap.Hub // live tap: its stream to the control plane, its taps
	trust     *mtls.Trust
	// certs are the certificates received over SDS that listeners present
	// to clients outside the mesh, swapped at apply time.
	certs *mtls.Certificates
	// linked runs the leaf managers of the linked services the applied
	// configuration presents; linkedLeaves is what handshakes read them
	// from, swapped at apply time.
	linked       *identity.Linked
	linkedLeaves *mtls.Leaves
	// ingress runs the manager of an ingress gateway's leaf for outside
	// clients (config.IngressLeafSecret), which apply adds to the
	// certificates listeners present.
	ingress *identity.Ingress
	// applyMu serializes installing configurations: xDS updates (apply)
	// and the arrival of an ingress leaf (reapplyIngressLeaf).
	applyMu sync.Mutex
	lkg     *lastKnownGood // nil without Options.StateDir; set by Run

	registry  *prometheus.Registry
	metrics   *metrics.Metrics
	telemetry *telemetry.Telemetry
	tracers   *tracing.Providers
	// runtime is the configuration being applied or last applied.
	runtime atomic.Pointer[config.Runtime]
	// changes counts configurations applied and leaf certificates issued
	// (see Activity).
	changes atomic.Uint64

	readiness readiness
	adminAddr atomic.Pointer[net.Addr]
	started   chan struct{}
	runOnce   sync.Once
	quit      chan struct{} // closed by Quit
	quitOnce  sync.Once
}

// Run runs a proxy with opts until ctx is cancelled, then shuts it down
// gracefully. See Proxy.Run.
func Run(ctx context.Context, opts Options) error {
	p, err := New(opts)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// New validates opts and returns a Proxy. It has no side effects.
func New(opts Options) (*Proxy, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid proxy options: %w", err)
	}
	opts = opts.withDefaults()
	p := &Proxy{opts: opts, log: opts.Logger.With("component", "proxy"), started: make(chan struct{}), quit: make(chan struct{}),
		trust: &mtls.Trust{}, certs: &mtls.Certificates{}, linkedLeaves: &mtls.Leaves{}}
	p.signer = identity.NewGRPCSigner(identity.SignerOptions{Addrs: opts.XDSAddrs, ProxyID: opts.ProxyID, Token: opts.tokenSource()})
	p.identity = identity.New(identity.Options{
		Signer:        p.signer,
		Backoff:       opts.XDSBackoff,
		RenewFraction: opts.LeafRenewFraction,
		Logger:        opts.Logger.With("component", "identity"),
		OnIssue:       p.onLeaf,
	})
	p.linked = identity.NewLinked(p.newLinkedManager)
	p.ingress = identity.NewIngress(p.newIngressManager, p.reapplyIngressLeaf)
	p.newObservability()
	creds := mtls.Credentials{Leaf: p.identity, Linked: p.linkedLeaves, Trust: p.trust, Certificates: p.certs}
	p.clusters = cluster.NewManager(cluster.Options{
		Credentials:         creds,
		OnBreaker:           p.onBreaker,
		OnHostRemoved:       p.metrics.ForgetHost,
		OnPanic:             p.onPanic,
		OnClusterRemoved:    p.metrics.ForgetCluster,
		Target:              p.targetMetrics,
		StandardSocketIO:    opts.SocketIO == SocketIOStandard,
		StandardHTTP2Client: opts.HTTP2Client == HTTP2NetHTTP,
	})
	h1, _ := listener.ParseHTTP1Server(opts.HTTP1Server) // validated
	p.listeners = listener.NewManager(listener.Options{
		HTTP1Server:         h1,
		Clusters:            p.clusters,
		Credentials:         creds,
		LocalID:             p.identity.SPIFFEID,
		RouterHooks:         p.routerHooks(),
		Telemetry:           p.telemetry,
		Tracers:             p.tracers,
		DrainTimeout:        opts.DrainTimeout,
		MaxConnections:      opts.MaxConnectionsPerListener,
		StandardSocketIO:    opts.SocketIO == SocketIOStandard,
		StandardHTTP2Server: opts.HTTP2Server == HTTP2NetHTTP,
		Logger:              opts.Logger,
	})
	p.xds = xds.New(xds.Options{
		Addrs:   opts.XDSAddrs,
		Delta:   opts.XDSProtocol == XDSDelta,
		Node:    &corev3.Node{Id: opts.ProxyID, UserAgentName: "weft-proxy"},
		Apply:   p.apply,
		Backoff: opts.XDSBackoff,
		Logger:  opts.Logger.With("component", "xds"),
		OnAck:   p.metrics.XDSAck,
		OnNack:  p.metrics.XDSNack,
	})
	return p, nil
}

// Quit starts a graceful shutdown, as cancelling Run's context does. It
// does not wait and may be called more than once.
func (p *Proxy) Quit() { p.quitOnce.Do(func() { close(p.quit) }) }

// BecameReady is closed when the proxy first becomes ready (see Ready):
// when a configuration is applied with everything it references, when the
// leaf certificate it was waiting for arrives, or when a readiness check
// finds the initial fetch timeout passed. It stays closed while draining.
func (p *Proxy) BecameReady() <-chan struct{} { return p.readiness.done() }

// Activity counts the TCP connections proxied, HTTP requests served,
// configurations applied and leaf certificates issued so far; it does not
// change while the proxy is idle (health checks that only connect do not
// count). A configuration change or a renewal maps in code and data that
// the traffic may never touch again, as traffic does: cmd/weft-proxy
// releases both once Activity stops changing.
func (p *Proxy) Activity() uint64 { return p.listeners.Activity() + p.changes.Load() }

// Started is closed once the admin API is listening (never, if Run fails
// to bind it).
func (p *Proxy) Started() <-chan struct{} { return p.started }

// AdminAddr returns the admin API's address once Started is closed, else nil.
func (p *Proxy) AdminAddr() net.Addr {
	if a := p.adminAddr.Load(); a != nil {
		return *a
	}
	return nil
}

// Run serves until ctx is cancelled. It then stops accepting, lets
// in-flight connections and requests finish for at most the drain timeout,
// closes everything and returns nil. It returns an error if the admin
// listener cannot be bound. Run may be called once.
func (p *Proxy) Run(ctx context.Context) error {
	err := errors.New("proxy: Run called twice")
	p.runOnce.Do(func() { err = p.run(ctx) })
	return err
}

func (p *Proxy) run(ctx context.Context) error {
	if err := p.openStateDir(); err != nil {
		return err
	}
	defer p.closeStateDir()
	ln, err := net.Listen("tcp", p.opts.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	addr := ln.Addr()
	p.adminAddr.Store(&addr)
	adminLog := p.log.With("component", "admin")
	adminSrv := &http.Server{
		Handler:           admin.Handler(p, adminLog, admin.Controls{LogLevel: p.opts.LogLevel, Quit: p.Quit, Profiling: p.opts.Profiling}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(adminLog.Handler(), slog.LevelDebug),
	}
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		adminSrv.Serve(ln)
	}()
	close(p.started)
	p.log.Info("weft-proxy started", "proxy_id", p.opts.ProxyID, "xds", p.opts.XDSAddrs, "admin", addr.String())

	p.restoreLastKnownGood()
	idCtx, stopIdentity := context.WithCancel(context.Background())
	idDone := make(chan struct{})
	go func() {
		defer close(idDone)
		p.runIdentities(idCtx)
	}()
	defer func() {
		stopIdentity()
		<-idDone
		p.signer.Close()
	}()

	tapCtx, stopTap := context.WithCancel(context.Background())
	tapDone := make(chan struct{})
	go func() {
		defer close(tapDone)
		p.tap.Run(tapCtx, tap.ClientOptions{Conn: p.signer.Conn, ProxyID: p.opts.ProxyID, Token: p.opts.tokenSource(), Logger: p.opts.Logger})
	}()
	defer func() {
		stopTap()
		<-tapDone
	}()

	xdsCtx, stopXDS := context.WithCancel(ctx)
	xdsErr := make(chan error, 1)
	go func() { xdsErr <- p.xds.Run(xdsCtx) }()
	xdsStopped := false
	select {
	case <-ctx.Done():
	case <-p.quit:
	case err = <-xdsErr:
		xdsStopped = true
	}
	stopXDS()
	if !xdsStopped {
		err = <-xdsErr
	}
	p.shutdown(adminSrv, adminDone)
	return err
}

// shutdown runs once the xDS client has stopped, so no apply races it;
// an ingress leaf arriving from now on is not installed
// (reapplyIngressLeaf).
func (p *Proxy) shutdown(adminSrv *http.Server, adminDone <-chan struct{}) {
	p.applyMu.Lock()
	p.readiness.draining.Store(true)
	p.applyMu.Unlock()
	p.log.Info("shutting down; draining connections", "drain_timeout", p.opts.DrainTimeout)
	p.listeners.Close()
	p.clusters.Close()
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), tracing.DefaultShutdownTimeout)
	if err := p.tracers.Close(flushCtx); err != nil {
		p.log.Warn("spans not flushed at shutdown", "error", err)
	}
	cancelFlush()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if adminSrv.Shutdown(ctx) != nil {
		adminSrv.Close()
	}
	<-adminDone
	p.log.Info("weft-proxy stopped")
}
