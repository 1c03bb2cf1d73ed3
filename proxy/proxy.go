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
// listeners and clusters present, and the trust bundles received over SDS
// are what they verify peers against (proxy/mtls); the admin API
// (proxy/admin) reports readiness, the accepted configuration and the
// certificates.
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

	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

// Proxy is one weft-proxy instance. Create it with New, start it with Run.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	clusters  *cluster.Manager
	listeners *listener.Manager
	xds       *xds.Client
	identity  *identity.Manager
	signer    *identity.GRPCSigner
	trust     *mtls.Trust
	lkg       *lastKnownGood // nil without Config.StateDir; set by Run

	readiness readiness
	adminAddr atomic.Pointer[net.Addr]
	started   chan struct{}
	runOnce   sync.Once
}

// Run runs a proxy with cfg until ctx is cancelled, then shuts it down
// gracefully. See Proxy.Run.
func Run(ctx context.Context, cfg Config) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// New validates cfg and returns a Proxy. It has no side effects.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid proxy config: %w", err)
	}
	cfg = cfg.withDefaults()
	p := &Proxy{cfg: cfg, log: cfg.Logger.With("component", "proxy"), started: make(chan struct{}), trust: &mtls.Trust{}}
	p.signer = identity.NewGRPCSigner(identity.SignerOptions{Addrs: cfg.XDSAddrs, ProxyID: cfg.ProxyID, Token: cfg.tokenSource()})
	p.identity = identity.New(identity.Options{
		Signer:        p.signer,
		Backoff:       cfg.XDSBackoff,
		RenewFraction: cfg.LeafRenewFraction,
		Logger:        cfg.Logger.With("component", "identity"),
		OnIssue:       p.saveLeaf,
	})
	creds := mtls.Credentials{Leaf: p.identity, Trust: p.trust}
	p.clusters = cluster.NewManager(cluster.Options{Credentials: creds})
	p.listeners = listener.NewManager(listener.Options{
		Clusters:     p.clusters,
		Credentials:  creds,
		LocalID:      p.identity.SPIFFEID,
		DrainTimeout: cfg.DrainTimeout,
		Logger:       cfg.Logger,
	})
	p.xds = xds.New(xds.Options{
		Addrs:   cfg.XDSAddrs,
		Node:    &corev3.Node{Id: cfg.ProxyID, UserAgentName: "weft-proxy"},
		Apply:   p.apply,
		Backoff: cfg.XDSBackoff,
		Logger:  cfg.Logger.With("component", "xds"),
	})
	return p, nil
}

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
	if err := p.openState(); err != nil {
		return err
	}
	defer p.closeState()
	ln, err := net.Listen("tcp", p.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	addr := ln.Addr()
	p.adminAddr.Store(&addr)
	adminLog := p.log.With("component", "admin")
	adminSrv := &http.Server{
		Handler:           admin.Handler(p, adminLog),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(adminLog.Handler(), slog.LevelDebug),
	}
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		adminSrv.Serve(ln)
	}()
	close(p.started)
	p.log.Info("weft-proxy started", "proxy_id", p.cfg.ProxyID, "xds", p.cfg.XDSAddrs, "admin", addr.String())

	p.restoreLastKnownGood()
	idCtx, stopIdentity := context.WithCancel(context.Background())
	idDone := make(chan struct{})
	go func() {
		defer close(idDone)
		p.identity.Run(idCtx)
	}()
	defer func() {
		stopIdentity()
		<-idDone
		p.signer.Close()
	}()

	xdsCtx, stopXDS := context.WithCancel(ctx)
	xdsErr := make(chan error, 1)
	go func() { xdsErr <- p.xds.Run(xdsCtx) }()
	select {
	case <-ctx.Done():
	case err = <-xdsErr:
	}
	stopXDS()
	if err == nil {
		err = <-xdsErr
	}
	p.shutdown(adminSrv, adminDone)
	return err
}

// shutdown runs once the xDS client has stopped, so no apply races it.
func (p *Proxy) shutdown(adminSrv *http.Server, adminDone <-chan struct{}) {
	p.readiness.draining.Store(true)
	p.log.Info("shutting down; draining connections", "drain_timeout", p.cfg.DrainTimeout)
	p.listeners.Close()
	p.clusters.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if adminSrv.Shutdown(ctx) != nil {
		adminSrv.Close()
	}
	<-adminDone
	p.log.Info("weft-proxy stopped")
}
