package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/certs/consulca"
	"github.com/weft-mesh/weft/controlplane"
	"github.com/weft-mesh/weft/controlplane/translate"
	"github.com/weft-mesh/weft/discovery"
	"github.com/weft-mesh/weft/internal/logging"
	"github.com/weft-mesh/weft/traces"
)

type controlPlaneFlags struct {
	consulAddr  string
	consulToken string
	datacenter  string
	resyncGrace time.Duration
	sendTimeout time.Duration
	xdsServer   string
	// removalShare and removalGrace are the endpoint panic guard.
	removalShare float64
	removalGrace time.Duration
	// panicThreshold is the sidecars' healthy_panic_threshold.
	panicThreshold float64
	xdsAddr        string
	adminAddr      string
	logLevel       string
	logFormat      string

	trustDomain   string
	caProvider    string
	caDir         string
	caCert        string
	caKey         string
	caChain       string
	leafTTL       time.Duration
	defaultPolicy string
	traceStore    int
	traceStoreMB  int
	otlpEndpoint  string
	traceSampling float64
}

func newControlPlaneCommand() *cobra.Command {
	f := &controlPlaneFlags{}
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Run the xDS control plane, fed by Consul",
		Long: `Run the xDS control plane. It watches Consul with blocking queries and
serves each sidecar's configuration over ADS (Envoy v3 xDS over gRPC).

A sidecar's xDS node ID is its Consul service ID (e.g. web-1-sidecar-proxy).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runControlPlane(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.consulAddr, "consul-addr", envOr("CONSUL_HTTP_ADDR", "127.0.0.1:8500"),
		"Consul HTTP API address, HOST:PORT or a URL (env CONSUL_HTTP_ADDR)")
	fl.StringVar(&f.consulToken, "consul-token", "",
		"Consul ACL token used for watches (default: env CONSUL_HTTP_TOKEN)")
	fl.StringVar(&f.datacenter, "datacenter", "", "Consul datacenter to serve (default: the agent's)")
	fl.DurationVar(&f.resyncGrace, "consul-resync-grace", discovery.DefaultResyncGrace, "after Consul comes back without its state (its catalog index went backwards), keep services and instances it no longer lists for this long, while its agents re-register them; 0 applies its catalog at once")
	fl.Float64Var(&f.removalShare, "consul-removal-share", discovery.DefaultRemovalShare, "endpoint panic guard: when one Consul answer removes more than this percentage of a service's instances without their checks failing (they vanished: an agent restart, anti-entropy churn), hold the removal for --consul-removal-grace; above 0 and below 100")
	fl.DurationVar(&f.removalGrace, "consul-removal-grace", discovery.DefaultRemovalGrace, "endpoint panic guard: how long a removal of more than --consul-removal-share of a service's instances is held before it applies; 0 turns the guard off")
	fl.Float64Var(&f.panicThreshold, "healthy-panic-threshold", 50, "endpoint panic guard, sidecar half: when fewer than this percentage of an upstream's instances are healthy (and not ejected), sidecars balance over all of them (Envoy's healthy_panic_threshold); 0 turns panic mode off")
	fl.StringVar(&f.xdsAddr, "xds-addr", "127.0.0.1:15010", "gRPC address serving ADS to proxies")
	fl.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:15000",
		`HTTP address of the admin API (/ready, /proxies, /catalog); "-" disables it`)
	fl.StringVar(&f.trustDomain, "trust-domain", "weft.local", "SPIFFE trust domain of every identity in the mesh (with --ca-provider weft)")
	fl.StringVar(&f.caProvider, "ca-provider", caProviderWeft,
		`"weft": Weft's own CA and trust domain; "consul": share one CA with Consul's Connect CA (Weft's root becomes the root of Consul's built-in provider; needs a token with operator:write; the trust domain is Consul's) so that Weft sidecars and Consul-configured proxies trust each other`)
	fl.StringVar(&f.caDir, "ca-dir", defaultCADir(),
		"directory holding the root CA (tls.crt, tls.key; a mounted kubernetes.io/tls Secret works); created on first start")
	fl.StringVar(&f.caCert, "ca-cert", "", "plugged-in CA: PEM certificate of an operator's intermediate (with --ca-key, --ca-chain)")
	fl.StringVar(&f.caKey, "ca-key", "", "plugged-in CA: PEM private key of the intermediate")
	fl.StringVar(&f.caChain, "ca-chain", "", "plugged-in CA: PEM certificates above the intermediate, ending with the root")
	fl.DurationVar(&f.sendTimeout, "xds-send-timeout", 2*time.Minute, "how long an xDS response may go unanswered (no ACK or NACK), or any send wait for its client to read, before the client's connection is closed (a stuck client reconnects; weft_cp_xds_send_stalls_total counts them)")
	fl.StringVar(&f.xdsServer, "xds-server", controlplane.XDSServerLean,
		`transport of the xDS port: "lean" (delta ADS streams on Weft's own HTTP/2 server, two goroutines per sidecar; every other method through grpc-go) or "grpc" (grpc-go's server for every method)`)
	fl.DurationVar(&f.leafTTL, "leaf-ttl", certs.DefaultLeafTTL, "lifetime of sidecar leaf certificates (minimum 1m); sidecars renew at about 2/3 of it")
	fl.StringVar(&f.defaultPolicy, "default-intention-policy", "",
		`decision for calls no intention matches: "allow", "deny", or empty to follow Consul's ACL default policy (allow when ACLs are off)`)
	fl.IntVar(&f.traceStore, "trace-store-traces", 5000,
		"recent traces the embedded trace backend keeps in memory (viewer at the admin address /traces); 0 disables it")
	fl.IntVar(&f.traceStoreMB, "trace-store-mb", traces.DefaultMaxBytes>>20,
		"MiB of spans (estimated) the embedded trace backend keeps at most; the oldest traces go first")
	fl.StringVar(&f.otlpEndpoint, "otlp-endpoint", "",
		"HOST:PORT of an OTLP/gRPC collector (Jaeger, an OpenTelemetry Collector) sidecars export spans to; default: this control plane's embedded trace backend on the xDS address")
	fl.Float64Var(&f.traceSampling, "trace-sampling", 1,
		"percent of requests without a trace context that start a trace (requests with a sampled context are always traced), 1 as in Envoy and Istio (docs/observability.md, what sampling costs); 0 with no backend turns tracing off")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func runControlPlane(ctx context.Context, f *controlPlaneFlags) error {
	logger, err := logging.New(os.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	consulCfg := discovery.ConsulConfig(f.consulAddr, f.consulToken)
	client, err := discovery.NewConsulClient(consulCfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	authority, runAuthority, err := openCA(ctx, f, client, logger)
	if err != nil {
		return err
	}
	authz, err := discovery.NewACLAuthorizer(consulCfg)
	if err != nil {
		return err
	}
	discoveryCfg, err := discoveryConfig(f)
	if err != nil {
		return err
	}
	discoveryCfg.Client, discoveryCfg.Logger = client, logger
	watcher, err := discovery.New(discoveryCfg)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	tracing, err := tracingConfig(f)
	if err != nil {
		return err
	}
	panicThreshold, err := panicThresholdFlag(f)
	if err != nil {
		return err
	}
	if f.traceStoreMB <= 0 {
		return fmt.Errorf("--trace-store-mb %d: want a positive number of MiB (turn the store off with --trace-store-traces 0)", f.traceStoreMB)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerDiscoveryMetrics(registry, watcher)
	store := traceStore(f.traceStore, f.traceStoreMB)
	registerTraceStoreMetrics(registry, store)
	server, err := controlplane.New(controlplane.Config{XDSAddr: f.xdsAddr, AdminAddr: f.adminAddr, Logger: logger, Registry: registry,
		Authority: authority, Authorizer: authz, DefaultIntentionPolicy: f.defaultPolicy, Traces: store, Tracing: tracing,
		HealthyPanicThreshold: panicThreshold, SendTimeout: f.sendTimeout, XDSServer: f.xdsServer})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var watchErr error
	if runAuthority != nil {
		wg.Go(func() { runAuthority(ctx) })
	}
	wg.Go(func() {
		watchErr = watcher.Run(ctx)
		cancel()
	})
	serveErr := server.Run(ctx, watcher)
	cancel()
	wg.Wait()
	if watchErr != nil && !errors.Is(watchErr, context.Canceled) {
		return errors.Join(serveErr, fmt.Errorf("discovery: %w", watchErr))
	}
	return serveErr
}

// CA providers of --ca-provider.
const (
	caProviderWeft   = "weft"
	caProviderConsul = "consul"
)

// openCA opens the CA --ca-provider names; run, when not nil, keeps it up
// to date until ctx ends.
func openCA(ctx context.Context, f *controlPlaneFlags, client *api.Client, logger *slog.Logger) (controlplane.CertAuthority, func(context.Context), error) {
	switch f.caProvider {
	case caProviderWeft:
		a, err := openAuthority(f)
		return a, nil, err
	case caProviderConsul:
		if f.caCert != "" || f.caKey != "" || f.caChain != "" {
			return nil, nil, errors.New("--ca-provider consul shares Consul's CA: it takes no --ca-cert, --ca-key or --ca-chain")
		}
		// Its own subdirectory: the roots are for Consul's trust domain,
		// not --trust-domain's.
		dir := filepath.Join(f.caDir, "consul")
		cfg := consulca.Config{Client: client, Dir: dir, LeafTTL: f.leafTTL, Logger: logger}
		if _, err := os.Stat(filepath.Join(f.caDir, "tls.crt")); err == nil {
			// An existing Weft mesh: its CA signs until the switch is made
			// (weft ca rotate), with both trust domains accepted.
			if cfg.Legacy, err = openAuthority(f); err != nil {
				return nil, nil, err
			}
		}
		shared, err := consulca.Open(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("--ca-provider consul: %w", err)
		}
		logger.Info("sharing Consul's Connect CA", "trust_domain", shared.TrustDomain().String())
		return shared, func(ctx context.Context) { shared.Run(ctx) }, nil
	}
	return nil, nil, fmt.Errorf("--ca-provider %q: want %q or %q", f.caProvider, caProviderWeft, caProviderConsul)
}

// openAuthority opens the mesh CA: an operator's plugged intermediate when
// --ca-cert is given, else the root persisted in --ca-dir.
func openAuthority(f *controlPlaneFlags) (*certs.Authority, error) {
	td, err := spiffeid.TrustDomainFromString(f.trustDomain)
	if err != nil {
		return nil, fmt.Errorf("--trust-domain %q: %w", f.trustDomain, err)
	}
	cfg := certs.AuthorityConfig{TrustDomain: td, Dir: f.caDir, LeafTTL: f.leafTTL}
	if f.caCert != "" || f.caKey != "" || f.caChain != "" {
		if f.caCert == "" || f.caKey == "" || f.caChain == "" {
			return nil, errors.New("a plugged-in CA needs all of --ca-cert, --ca-key and --ca-chain")
		}
		if cfg.Plugged, err = certs.LoadPluggedCA(f.caCert, f.caKey, f.caChain, td, time.Now()); err != nil {
			return nil, err
		}
	}
	a, err := certs.OpenAuthority(cfg)
	if err != nil {
		return nil, fmt.Errorf("open CA: %w", err)
	}
	return a, nil
}

func defaultCADir() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "weft", "ca")
	}
	return "weft-ca"
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func traceStore(maxTraces, maxMB int) *traces.Store {
	if maxTraces <= 0 {
		return nil
	}
	return traces.NewStore(traces.Limits{MaxTraces: maxTraces, MaxBytes: int64(maxMB) << 20})
}

// registerTraceStoreMetrics exposes the embedded trace backend's bounds and
// what it holds; nothing when it is off.
func registerTraceStoreMetrics(reg prometheus.Registerer, store *traces.Store) {
	if store == nil {
		return
	}
	gauge := func(name, help string, v func(traces.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(store.Stats()) })
	}
	counter := func(name, help string, v func(traces.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(store.Stats()) })
	}
	reg.MustRegister(
		gauge("weft_cp_trace_store_traces", "Traces the embedded trace backend holds.", func(s traces.Stats) float64 { return float64(s.Traces) }),
		gauge("weft_cp_trace_store_spans", "Spans the embedded trace backend holds.", func(s traces.Stats) float64 { return float64(s.Spans) }),
		gauge("weft_cp_trace_store_bytes", "Estimated size of the spans the embedded trace backend holds.", func(s traces.Stats) float64 { return float64(s.Bytes) }),
		gauge("weft_cp_trace_store_max_traces", "--trace-store-traces: traces held at most.", func(s traces.Stats) float64 { return float64(s.Limits.MaxTraces) }),
		gauge("weft_cp_trace_store_max_bytes", "--trace-store-mb in bytes: estimated span bytes held at most.", func(s traces.Stats) float64 { return float64(s.Limits.MaxBytes) }),
		counter("weft_cp_trace_store_traces_evicted_total", "Oldest traces evicted to stay within the store's bounds.", func(s traces.Stats) float64 { return float64(s.TracesEvicted) }),
		counter("weft_cp_trace_store_spans_dropped_total", "Spans dropped because their trace already held the most spans a trace may.", func(s traces.Stats) float64 { return float64(s.SpansDropped) }),
	)
}

// registerDiscoveryMetrics exposes the Consul watcher's counters.
// panicThresholdFlag is --healthy-panic-threshold, checked.
func panicThresholdFlag(f *controlPlaneFlags) (*float64, error) {
	if f.panicThreshold < 0 || f.panicThreshold > 100 {
		return nil, fmt.Errorf("--healthy-panic-threshold %v: want a percentage from 0 to 100", f.panicThreshold)
	}
	v := f.panicThreshold
	return &v, nil
}

// discoveryConfig is the part of the watcher's configuration the flags
// set; a zero grace turns its protection off.
func discoveryConfig(f *controlPlaneFlags) (discovery.Config, error) {
	if f.removalShare <= 0 || f.removalShare >= 100 {
		return discovery.Config{}, fmt.Errorf("--consul-removal-share %v: want a percentage above 0 and below 100", f.removalShare)
	}
	if f.removalGrace < 0 {
		return discovery.Config{}, fmt.Errorf("--consul-removal-grace %v: must not be negative (0 turns the guard off)", f.removalGrace)
	}
	off := func(d time.Duration) time.Duration {
		if d <= 0 {
			return -1
		}
		return d
	}
	return discovery.Config{Datacenter: f.datacenter, ResyncGrace: off(f.resyncGrace),
		RemovalShare: f.removalShare, RemovalGrace: off(f.removalGrace)}, nil
}

func registerDiscoveryMetrics(reg prometheus.Registerer, w *discovery.Watcher) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_cp_consul_removals_held_total",
			Help: "Removals the endpoint panic guard held: one Consul answer removed more than --consul-removal-share of a service's instances without their checks failing."},
			func() float64 { return float64(w.Stats().RemovalsHeld) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_cp_consul_held_services",
			Help: "Services whose instance removals are held now, by the endpoint panic guard or through a Consul resync."},
			func() float64 { return float64(w.Stats().HeldServices) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_cp_consul_watch_errors_total",
			Help: "Failed Consul blocking queries."}, func() float64 { return float64(w.Stats().WatchErrors) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_cp_consul_watches",
			Help: "Consul blocking queries running."}, func() float64 { return float64(w.Stats().Watches) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_cp_consul_last_success_age_seconds",
			Help: "Seconds since a Consul query last succeeded; -1 before the first. Idle blocking queries return every 5 minutes, so much more than that means Consul is unreachable."}, func() float64 {
			last := w.Stats().LastSuccess
			if last.IsZero() {
				return -1
			}
			return time.Since(last).Seconds()
		}),
	)
}

// tracingConfig says where sidecars send spans: --otlp-endpoint, else the
// embedded backend on the xDS address (loopback when that is a wildcard).
func tracingConfig(f *controlPlaneFlags) (*translate.Tracing, error) {
	if f.traceSampling < 0 || f.traceSampling > 100 {
		return nil, fmt.Errorf("--trace-sampling %v: want a percentage from 0 to 100", f.traceSampling)
	}
	endpoint := f.otlpEndpoint
	if endpoint == "" {
		if f.traceStore <= 0 {
			return nil, nil
		}
		endpoint = f.xdsAddr
	}
	host, portStr, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, fmt.Errorf("OTLP endpoint %q: %w", endpoint, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("OTLP endpoint %q: bad port", endpoint)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return &translate.Tracing{CollectorHost: host, CollectorPort: port, SamplingPercent: f.traceSampling}, nil
}
