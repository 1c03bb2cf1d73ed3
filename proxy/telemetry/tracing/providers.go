package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.38.0"
)

// Defaults of Options fields left zero.
const (
	DefaultQueueSize       = 2048
	DefaultBatchTimeout    = 2 * time.Second
	DefaultExportTimeout   = 10 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	DefaultServiceName     = "unknown_service:weft-proxy"
)

// instrumentationName names the tracer of every span weft-proxy starts.
const instrumentationName = "github.com/weft-mesh/weft/proxy"

// Endpoint is a collector resolved to an address.
type Endpoint struct {
	Protocol Protocol
	// Address is the collector's "host:port".
	Address string
	// Path is the OTLP/HTTP URL path; empty for gRPC.
	Path string
	// Timeout bounds one export.
	Timeout time.Duration
}

// Options configure Providers. Every field is optional.
type Options struct {
	// Resolve turns a collector cluster name into a "host:port" (the
	// cluster's first endpoint). It is called from Acquire. Without it,
	// only collectors with an Address can be used.
	Resolve func(cluster string) (addr string, ok bool)
	// DefaultServiceName is the service.name of configs without one
	// (default "unknown_service:weft-proxy").
	DefaultServiceName string
	// Resource holds further resource attributes of every span, such as
	// service.instance.id.
	Resource []attribute.KeyValue
	// QueueSize bounds the spans waiting for export per provider; spans
	// ended while it is full are dropped (default 2048).
	QueueSize int
	// BatchTimeout is the longest a span waits before its batch is
	// exported (default 2s).
	BatchTimeout time.Duration
	// ExportTimeout bounds one export of a collector without its own
	// timeout (default 10s).
	ExportTimeout time.Duration
	// ShutdownTimeout bounds the final flush of a provider no longer used
	// (default 5s).
	ShutdownTimeout time.Duration
	// NewExporter builds the span exporter of an endpoint (default: OTLP
	// over gRPC or HTTP, plaintext). Tests replace it.
	NewExporter func(ctx context.Context, e Endpoint) (sdktrace.SpanExporter, error)
	// Logger receives export failures, at most one warning per minute and
	// provider (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.DefaultServiceName == "" {
		o.DefaultServiceName = DefaultServiceName
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = DefaultExportTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.NewExporter == nil {
		o.NewExporter = newOTLPExporter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Providers shares one TracerProvider (exporter, batch span processor,
// sampler) per collector endpoint and service name between the Tracers
// that use them. A provider lives while a Tracer holds it: when the last
// one is released it is shut down in the background, which flushes the
// spans it still queues.
//
// Acquire, Release and Close may be called from any goroutine; they never
// wait for a collector.
type Providers struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	byKey  map[providerKey]*provider
	closed bool

	shutdowns sync.WaitGroup
}

type providerKey struct {
	endpoint Endpoint
	service  string
}

// provider is one shared TracerProvider. refs is guarded by Providers.mu.
type provider struct {
	key  providerKey
	tp   *sdktrace.TracerProvider
	root *ratioSampler
	refs int
}

// NewProviders returns an empty set of providers. It starts nothing.
func NewProviders(opts Options) *Providers {
	opts = opts.withDefaults()
	return &Providers{opts: opts, log: opts.Logger.With("component", "tracing"), byKey: map[providerKey]*provider{}}
}

// ErrClosed is returned by Acquire after Close.
var ErrClosed = errors.New("tracing: providers closed")

// Acquire returns a Tracer for cfg, sharing the provider of the same
// collector endpoint and service name. Release it when the configuration
// that holds it is replaced. A nil cfg yields a nil Tracer, whose methods
// trace nothing.
//
// The sampling ratio belongs to the shared provider: acquiring it with a
// new ratio applies that ratio to every Tracer of the provider.
func (ps *Providers) Acquire(cfg *Config) (*Tracer, error) {
	if cfg == nil {
		return nil, nil
	}
	key, err := ps.keyOf(cfg)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	p := ps.byKey[key]
	if p == nil {
		if p, err = ps.newProvider(key); err != nil {
			return nil, err
		}
		ps.byKey[key] = p
	}
	p.refs++
	p.root.set(cfg.SamplingRatio)
	return newTracer(ps, p), nil
}

// Current reports whether t is the Tracer Acquire(cfg) would give now:
// nil when cfg is nil or its collector does not resolve, else a Tracer of
// the provider of the endpoint cfg's collector resolves to and of cfg's
// service name. A holder whose cfg did not change keeps t while it is
// current, and acquires again when the collector's address changed.
func (ps *Providers) Current(t *Tracer, cfg *Config) bool {
	if cfg == nil {
		return t == nil
	}
	key, err := ps.keyOf(cfg)
	if err != nil {
		return t == nil
	}
	return t != nil && t.p.key == key
}

// keyOf resolves cfg's collector into the key of its provider.
func (ps *Providers) keyOf(cfg *Config) (providerKey, error) {
	ep, err := ps.resolve(cfg.Collector)
	if err != nil {
		return providerKey{}, err
	}
	key := providerKey{endpoint: ep, service: cfg.ServiceName}
	if key.service == "" {
		key.service = ps.opts.DefaultServiceName
	}
	return key, nil
}

func (ps *Providers) resolve(c Collector) (Endpoint, error) {
	ep := Endpoint{Protocol: c.Protocol, Address: c.Address, Path: c.Path, Timeout: c.Timeout}
	if ep.Timeout <= 0 {
		ep.Timeout = ps.opts.ExportTimeout
	}
	if ep.Address != "" {
		return ep, nil
	}
	if ps.opts.Resolve != nil {
		if addr, ok := ps.opts.Resolve(c.Cluster); ok {
			ep.Address = addr
			return ep, nil
		}
	}
	return Endpoint{}, fmt.Errorf("tracing: collector cluster %q: unknown or without endpoints", c.Cluster)
}

func (ps *Providers) newProvider(key providerKey) (*provider, error) {
	exp, err := ps.opts.NewExporter(context.Background(), key.endpoint)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter for %s %s: %w", key.endpoint.Protocol, key.endpoint.Address, err)
	}
	attrs := append([]attribute.KeyValue{semconv.ServiceName(key.service)}, ps.opts.Resource...)
	root := &ratioSampler{}
	root.set(1) // Acquire sets the config's ratio before any span starts
	bsp := sdktrace.NewBatchSpanProcessor(
		newQuietExporter(exp, ps.log.With("collector", key.endpoint.Address, "service", key.service)),
		sdktrace.WithMaxQueueSize(ps.opts.QueueSize),
		sdktrace.WithMaxExportBatchSize(min(512, ps.opts.QueueSize)),
		sdktrace.WithBatchTimeout(ps.opts.BatchTimeout),
		sdktrace.WithExportTimeout(key.endpoint.Timeout),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(root)),
		sdktrace.WithSpanProcessor(bsp),
	)
	return &provider{key: key, tp: tp, root: root}, nil
}

// release drops a Tracer's hold on p and shuts p down when it was the last.
func (ps *Providers) release(p *provider) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p.refs--
	if p.refs > 0 || ps.byKey[p.key] != p {
		return
	}
	delete(ps.byKey, p.key)
	ps.shutdownLater(p)
}

// shutdownLater flushes and stops p in the background. Call with mu held.
func (ps *Providers) shutdownLater(p *provider) {
	ps.shutdowns.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ps.opts.ShutdownTimeout)
		defer cancel()
		if err := p.tp.Shutdown(ctx); err != nil {
			ps.log.Debug("tracer provider shutdown", "collector", p.key.endpoint.Address, "error", err)
		}
	})
}

// Close shuts every provider down, flushing their spans, and waits for
// that (each flush bounded by ShutdownTimeout) or for ctx. Tracers still
// held trace nothing afterwards. Close is idempotent.
func (ps *Providers) Close(ctx context.Context) error {
	ps.mu.Lock()
	if !ps.closed {
		ps.closed = true
		for k, p := range ps.byKey {
			delete(ps.byKey, k)
			ps.shutdownLater(p)
		}
	}
	ps.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ps.shutdowns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
