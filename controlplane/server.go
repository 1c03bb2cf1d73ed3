// Package controlplane serves Weft's xDS control plane: it turns catalog
// snapshots into per-proxy Envoy v3 resources and serves them over ADS.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
	"github.com/weft-mesh/weft/traces"
)

// CatalogSource yields catalog snapshots. The channel is latest-wins: a
// receiver always gets the newest snapshot, never a stale one, and a slow
// receiver never blocks the source. It is closed when the source stops.
type CatalogSource interface {
	Snapshots() <-chan *catalog.Snapshot
}

// Config configures a control-plane Server.
type Config struct {
	// XDSAddr is the gRPC address serving ADS; default 127.0.0.1:15010.
	XDSAddr string
	// AdminAddr is the HTTP address of /ready, /proxies and /catalog;
	// default 127.0.0.1:15000. "-" disables it.
	AdminAddr string
	// ShutdownGrace bounds how long Run waits for streams to end on stop.
	ShutdownGrace time.Duration
	// XDSServer is the xDS port's transport: XDSServerLean (the
	// default) or XDSServerGRPC (leanxds.go).
	XDSServer string
	// SendTimeout is how long a response may wait for a client to read
	// before the client's connection is closed (stall.go); default 2 min,
	// well above the 30 s weft-proxy waits at most before repeating a NACK.
	SendTimeout time.Duration
	Logger      *slog.Logger

	// Authority signs sidecars' certificates and holds the trust bundle.
	// Nil turns mTLS and authorization off (tests of plain traffic only).
	Authority CertAuthority
	// Authorizer checks the ACL tokens of certificate requests; required
	// with an Authority.
	Authorizer Authorizer
	// DefaultIntentionPolicy decides calls no intention matches: "allow",
	// "deny", or "" to follow Consul's ACL default policy.
	DefaultIntentionPolicy string

	// Registry holds the control plane's metrics, served at /metrics; a
	// new one when nil. Callers may register more collectors on it.
	Registry *prometheus.Registry

	// Tracing, when set, has sidecars trace HTTP requests and export spans
	// to its collector over OTLP/gRPC.
	Tracing *translate.Tracing

	// HealthyPanicThreshold, when set, is the panic threshold of every
	// upstream cluster sidecars get, in percent from 0 (panic mode off) to
	// 100; nil leaves the sidecars' default, 50.
	HealthyPanicThreshold *float64

	// Traces, when set, makes the control plane the mesh's embedded trace
	// backend: it receives OTLP on the xDS gRPC address and on the admin
	// address (POST /v1/traces) and serves the trace viewer (/traces).
	Traces *traces.Store
}

func (c *Config) setDefaults() {
	if c.XDSAddr == "" {
		c.XDSAddr = "127.0.0.1:15010"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:15000"
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 5 * time.Second
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 2 * time.Minute
	}
	if c.XDSServer == "" {
		c.XDSServer = XDSServerLean
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.XDSAddr); err != nil {
		return fmt.Errorf("xds address %q: %w", c.XDSAddr, err)
	}
	if c.AdminAddr != "-" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return fmt.Errorf("admin address %q: %w", c.AdminAddr, err)
		}
	}
	switch c.DefaultIntentionPolicy {
	case "", "allow", "deny":
	default:
		return fmt.Errorf("default intention policy %q: want allow, deny or empty", c.DefaultIntentionPolicy)
	}
	if c.Authority != nil && c.Authorizer == nil {
		return errors.New("an Authorizer is required to issue certificates")
	}
	if c.ShutdownGrace < 0 {
		return fmt.Errorf("shutdown grace %v: must not be negative", c.ShutdownGrace)
	}
	if c.XDSServer != XDSServerLean && c.XDSServer != XDSServerGRPC {
		return fmt.Errorf("xds server %q: want %q or %q", c.XDSServer, XDSServerLean, XDSServerGRPC)
	}
	if c.SendTimeout < 0 {
		return fmt.Errorf("xds send timeout %v: must not be negative", c.SendTimeout)
	}
	if p := c.HealthyPanicThreshold; p != nil && (*p < 0 || *p > 100) {
		return fmt.Errorf("healthy panic threshold %v: want a percentage from 0 to 100", *p)
	}
	return nil
}

// Server is the xDS control plane. Create it with New, then call Run once.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	cache     *nodeCache
	status    *statusTracker
	publisher *publisher
	// translator, notApplied and proxylessPublished (the proxyless
	// clients the last publish served) are used by the publish loop
	// alone.
	translator         *translate.Translator
	notApplied         notAppliedLog
	proxylessPublished map[string]bool

	state     *publishedState
	certs     *certService
	taps      *tapHub
	metrics   *metrics
	proxyless *proxylessClients
	stalls    *stallGuard
	delta     *deltaServer // delta ADS streams; set with the gRPC server

	ready     chan struct{}
	xdsAddr   net.Addr
	adminAddr net.Addr
}

// New validates the config and builds a Server. It has no side effects.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("component", "controlplane")
	cache := newNodeCache(cacheLogger{cfg.Logger.With("component", "xds-cache")})
	m := newMetrics(cfg.Registry)
	pl := newProxylessClients()
	s := &Server{
		metrics:    m,
		proxyless:  pl,
		cfg:        cfg,
		logger:     logger,
		cache:      cache,
		status:     newStatusTracker(cfg.Logger.With("component", "xds"), m, pl),
		publisher:  newPublisher(cache, logger, m),
		translator: translate.NewTranslator(),
		state:      &publishedState{},
		ready:      make(chan struct{}),
	}
	s.stalls = newStallGuard(cfg.SendTimeout, cfg.Logger.With("component", "xds"), cfg.Registry)
	s.taps = newTapHub(cfg.Authorizer, s.state.catalog.Load, logger.With("component", "tap"))
	s.taps.register(cfg.Registry)
	if cfg.Authority != nil {
		s.certs = &certService{ca: cfg.Authority, authz: cfg.Authorizer, catalog: s.state.catalog.Load,
			logger: cfg.Logger.With("component", "certs"), issued: map[string]string{}}
	}
	return s, nil
}

// Ready is closed once the xDS and admin listeners are bound; XDSAddr and
// AdminAddr are valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// XDSAddr is the bound xDS address; valid after Ready.
func (s *Server) XDSAddr() net.Addr { return s.xdsAddr }

// AdminAddr is the bound admin address, nil if disabled; valid after Ready.
func (s *Server) AdminAddr() net.Addr { return s.adminAddr }

// Run binds the listeners, serves ADS and publishes every snapshot from src
// until ctx is done or src closes. It returns after every goroutine it
// started has exited.
func (s *Server) Run(ctx context.Context, src CatalogSource) error {
	// No kernel keepalive on xDS connections: gRPC's keepalive pings
	// check clients (KeepaliveParams), and grpc-go sets their wait as the
	// connection's TCP_USER_TIMEOUT, which with Go's default kernel
	// keepalive (a probe after 15 s idle, then every 15 s) had the kernel
	// abort idle connections whose peer answered every probe (bench/cp at
	// 10,000 sidecars: about 1,000 at once, 30 s after the sync, counted
	// in TcpExtTCPAbortOnTimeout).
	xdsLis, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", s.cfg.XDSAddr)
	if err != nil {
		return fmt.Errorf("listen xds on %s: %w", s.cfg.XDSAddr, err)
	}
	s.xdsAddr = xdsLis.Addr()
	var adminLis net.Listener
	if s.cfg.AdminAddr != "-" {
		if adminLis, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
			xdsLis.Close()
			return fmt.Errorf("listen admin on %s: %w", s.cfg.AdminAddr, err)
		}
		s.adminAddr = adminLis.Addr()
	}
	close(s.ready)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	grpcServer := s.newGRPCServer(ctx)
	admin := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	var lean *leanXDS
	if s.cfg.XDSServer == XDSServerLean {
		lean = newLeanXDS(s, grpcServer)
		wg.Go(func() { errs <- serveErr("xds", lean.serve(s.stalls.listener(xdsLis))) })
	} else {
		wg.Go(func() { errs <- serveErr("xds", grpcServer.Serve(s.stalls.listener(xdsLis))) })
	}
	if adminLis != nil {
		wg.Go(func() { errs <- serveErr("admin", admin.Serve(adminLis)) })
	}
	wg.Go(func() { errs <- s.publishLoop(ctx, src) })
	wg.Go(func() { s.stalls.sweep(ctx, s.status.unanswered) })
	s.logger.Info("control plane serving", "xds", s.xdsAddr.String(), "admin", addrString(s.adminAddr))

	err = <-errs
	cancel()
	if lean != nil {
		lean.stop(xdsLis)
	}
	s.stopGRPC(grpcServer, lean)
	shutdownCtx, stop := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer stop()
	admin.Shutdown(shutdownCtx)
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *Server) newGRPCServer(ctx context.Context) *grpc.Server {
	g := grpc.NewServer(
		// A client silent for 30 s is pinged and dropped if it has not
		// answered within 20 s (grpc-go's default wait). grpc-go also
		// makes the wait the connection's TCP_USER_TIMEOUT: the kernel
		// resets a connection whose sent data stays unacknowledged that
		// long, as when the client stops reading (see Run for why the
		// kernel's own keepalive is off).
		grpc.KeepaliveParams(xdsKeepalive),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(xdsMaxStreams),
		grpc.ReadBufferSize(xdsReadBufferSize),
		grpc.WriteBufferSize(xdsWriteBufferSize),
		grpc.ChainStreamInterceptor(s.stalls.streamInterceptor),
		grpc.StatsHandler(s.stalls),
	)
	callbacks := s.status.callbacks()
	s.delta = &deltaServer{cache: s.cache, callbacks: callbacks, closeConn: s.stalls.closeConn}
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, adsServer{Server: serverv3.NewServer(ctx, s.cache, callbacks), delta: s.delta})
	if s.certs != nil {
		certsv1.RegisterCertificateServiceServer(g, s.certs)
	}
	if s.cfg.Traces != nil {
		collectortrace.RegisterTraceServiceServer(g, &traces.Receiver{Store: s.cfg.Traces})
	}
	tapv1.RegisterTapServiceServer(g, s.taps)
	return g
}

// stopGRPC ends streams gracefully, forcing them closed after the grace.
//
// On the lean transport (lean not nil), the streams grpc-go serves
// through ServeHTTP end only with their connections: grpc-go's Stop
// closes their transports but cannot wake a handler waiting for the
// client's next message, so the connections are closed first.
func (s *Server) stopGRPC(g *grpc.Server, lean *leanXDS) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	s.delta.endAll() // their handlers wait in receiving: close their connections
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownGrace):
		if lean != nil {
			lean.h2.CloseAll()
		}
		g.Stop()
		<-done
	}
	if lean != nil {
		lean.h2.CloseAll()
	}
}

func serveErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return context.Canceled
	}
	return fmt.Errorf("%s server: %w", what, err)
}

func addrString(a net.Addr) string {
	if a == nil {
		return "disabled"
	}
	return a.String()
}

// The xDS server's per-connection read and write buffers. grpc-go takes
// both from pools only while a connection reads or writes (the write
// buffer until the batch is flushed), so idle sidecars hold none; but a
// push to every sidecar at once holds one of each per connection, and
// the pools keep them until two garbage collections later. xDS requests
// are small and responses are written in frames of at most 16 KiB, so 8
// KiB batches cost a few more write calls on a large response, against
// grpc-go's 32 KiB defaults.
const (
	xdsReadBufferSize  = 8 << 10
	xdsWriteBufferSize = 8 << 10
)

// xdsKeepalive pings a client silent for 30 s and drops it if it has not
// answered within 20 s (grpc-go's default wait); xdsMaxStreams bounds a
// connection's streams. Both transports (XDSServer) apply them.
var xdsKeepalive = keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}

const xdsMaxStreams = 1024
