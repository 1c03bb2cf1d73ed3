package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.38.0"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/router"
	"github.com/weft-mesh/weft/proxy/tap"
	"github.com/weft-mesh/weft/proxy/telemetry"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// newObservability builds the proxy's metrics registry (weft_proxy_*,
// Go and process collectors), its telemetry and its tracer providers.
// It starts nothing.
func (p *Proxy) newObservability() {
	p.registry = prometheus.NewRegistry()
	p.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.metrics = metrics.New(p.registry)
	p.tap = tap.NewHub()
	p.telemetry = &telemetry.Telemetry{Metrics: p.metrics, AccessLog: p.opts.AccessLog, LocalID: p.identity.SPIFFEID, Tap: p.tap}
	p.tracers = tracing.NewProviders(tracing.Options{
		Resolve:  p.resolveCollector,
		Resource: []attribute.KeyValue{semconv.ServiceInstanceID(p.opts.ProxyID)},
		Logger:   p.opts.Logger,
	})
	s := metrics.Status{
		XDSConnected: func() bool { return p.xds.Status().Connected },
		CertExpiry: func() (time.Time, bool) {
			if l := p.identity.Current(); l != nil {
				return l.Cert.Leaf.NotAfter, true
			}
			return time.Time{}, false
		},
	}
	if al := p.opts.AccessLog; al != nil {
		s.AccessLogDropped = al.Dropped
	}
	p.metrics.SetStatus(s)
}

// routerHooks report each upstream attempt and what happened to it to the
// request's telemetry, and count retries per cluster.
func (p *Proxy) routerHooks() router.Hooks {
	return router.Hooks{
		Attempt: telemetry.Transport,
		Retry:   func(cluster string) { p.metrics.Cluster(cluster).Retried() },
		Observe: telemetry.Observe,
	}
}

// onBreaker sets weft_proxy_breaker_state and counts ejections.
func (p *Proxy) onBreaker(clusterName, addr string, to gobreaker.State) {
	c := p.metrics.Cluster(clusterName)
	c.BreakerState(addr, metrics.BreakerState(to))
	if to == gobreaker.StateOpen {
		c.Ejected()
	}
}

// onPanic sets weft_proxy_cluster_panic and logs the change: panic mode
// sends requests to hosts Consul's checks call unhealthy.
func (p *Proxy) onPanic(clusterName string, panic bool) {
	p.metrics.Cluster(clusterName).Panic(panic)
	if panic {
		p.log.Warn("cluster in panic mode: too few hosts are healthy, balancing over all of them", "cluster", clusterName)
	} else {
		p.log.Info("cluster left panic mode", "cluster", clusterName)
	}
}

// targetMetrics holds the gateway metrics of a cluster's target
// (weft_proxy_gateway_*), for the cluster to count through.
func (p *Proxy) targetMetrics(t config.Target) *metrics.Target {
	return p.metrics.Target(t.Service, t.Datacenter, t.Peer)
}

// resolveCollector turns a collector cluster (weft-otlp) into the address
// of its first endpoint in the configuration being applied. Tracers are
// acquired while listeners are swapped in, after the runtime is stored.
func (p *Proxy) resolveCollector(name string) (string, bool) {
	rt := p.runtime.Load()
	if rt == nil {
		return "", false
	}
	c := rt.Clusters[name]
	if c == nil || len(c.Endpoints) == 0 {
		return "", false
	}
	for _, ep := range c.Endpoints {
		if ep.Healthy {
			return ep.Address, true
		}
	}
	return c.Endpoints[0].Address, true
}

// Metrics implements admin.MetricsSource: the proxy's own registry.
func (p *Proxy) Metrics() prometheus.Gatherer { return p.registry }

// Clusters implements admin.ClusterSource.
func (p *Proxy) Clusters() []cluster.Info { return p.clusters.Info() }
