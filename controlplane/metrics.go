package controlplane

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the control plane's Prometheus metrics, registered on the
// registry given in Config (a new one when nil) and served at /metrics.
type metrics struct {
	connected   prometheus.Gauge
	pushes      *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	pushLatency *prometheus.HistogramVec
	translate   prometheus.Histogram
	proxies     prometheus.Gauge
	catalogVer  prometheus.Gauge

	// pending remembers when each proxy's new version of a type was
	// published, so its ACK can be timed.
	mu      sync.Mutex
	pending map[pendingKey]pendingPush
}

type pendingKey struct{ proxy, typeURL string }

type pendingPush struct {
	version string
	since   time.Time
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_cp_connected_proxies",
			Help: "xDS streams currently open, one per connected proxy."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_cp_xds_pushes_total",
			Help: "xDS responses sent to proxies, by resource type."}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_cp_xds_nacks_total",
			Help: "xDS responses proxies rejected, by resource type."}, []string{"type"}),
		pushLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_cp_push_latency_seconds",
			Help:    "Time from a catalog change reaching the control plane to a proxy ACKing the resulting version, by type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"type"}),
		translate: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_cp_translate_seconds",
			Help:    "Time to translate, validate and cache one catalog snapshot for every proxy.",
			Buckets: prometheus.ExponentialBuckets(.0005, 2, 14)}),
		proxies: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_cp_catalog_proxies",
			Help: "Sidecar registrations in the last published catalog."}),
		catalogVer: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_cp_catalog_version",
			Help: "Version of the last published catalog snapshot."}),
		pending: map[pendingKey]pendingPush{},
	}
	reg.MustRegister(m.connected, m.pushes, m.nacks, m.pushLatency, m.translate, m.proxies, m.catalogVer)
	return m
}

// published records that proxy was handed version of typeURL at since.
func (m *metrics) published(proxy, typeURL, version string, since time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pendingKey{proxy, typeURL}
	if p, ok := m.pending[k]; ok && p.version == version {
		return
	}
	m.pending[k] = pendingPush{version: version, since: since}
}

// acked times a proxy's ACK of the version last published to it.
func (m *metrics) acked(proxy, typeURL, version string) {
	m.mu.Lock()
	k := pendingKey{proxy, typeURL}
	p, ok := m.pending[k]
	if ok && p.version == version {
		delete(m.pending, k)
	}
	m.mu.Unlock()
	if ok && p.version == version {
		m.pushLatency.WithLabelValues(shortType(typeURL)).Observe(time.Since(p.since).Seconds())
	}
}

// forget drops what is pending for a proxy that left.
func (m *metrics) forget(proxy string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.pending {
		if k.proxy == proxy {
			delete(m.pending, k)
		}
	}
}

// shortType turns a type URL into a short label: "Listener", "Cluster"…
func shortType(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}
