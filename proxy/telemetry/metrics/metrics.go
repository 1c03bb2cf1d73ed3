// Package metrics holds weft-proxy's Prometheus metrics, exactly the
// weft_proxy_* metrics of docs/observability.md, and the handles the
// request path updates them through.
//
// Handles are resolved once per label tuple, when a configuration is
// compiled or a connection accepted, and are cheap to update: Route.Observe
// makes no map lookup and no allocation once a (code, grpc_status, reason)
// has been seen on the route; TCP and Cluster handles hold their counters.
// Values read at scrape time (xDS connection, certificate expiry, dropped
// access-log lines) come from callbacks (SetStatus), so nothing polls.
package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Direction is the direction label: which listener saw the traffic.
type Direction string

const (
	// Inbound is traffic to the local app, on the public listener.
	Inbound Direction = "inbound"
	// Outbound is traffic from the local app, on an upstream listener.
	Outbound Direction = "outbound"
)

// Values of the protocol label.
const (
	ProtocolHTTP  = "http"
	ProtocolHTTP2 = "http2"
	ProtocolGRPC  = "grpc"
)

// BreakerState is the value of weft_proxy_breaker_state. The numbers are
// gobreaker's State values, so metrics.BreakerState(to) converts one.
type BreakerState int

const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// DurationBuckets are the request latency histogram's buckets, in seconds.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// xdsTypes are the resource types whose ACK and NACK counters exist from
// the start, so that rate() works before the first NACK.
var xdsTypes = []string{"Listener", "RouteConfiguration", "Cluster", "ClusterLoadAssignment", "Secret"}

// Metrics are one sidecar's metrics. Its methods are safe for concurrent
// use; the handles they return are shared by every caller asking for the
// same labels.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	tcpOpened *prometheus.CounterVec
	tcpClosed *prometheus.CounterVec
	tcpBytes  *prometheus.CounterVec
	breaker   *prometheus.GaugeVec
	ejections *prometheus.CounterVec
	retries   *prometheus.CounterVec
	xdsAcks   *prometheus.CounterVec
	xdsNacks  *prometheus.CounterVec
	status    *statusCollector

	mu     sync.Mutex // guards routes and tcp
	routes map[routeKey]*Route
	tcp    map[tcpKey]*TCP
	// clusters holds *Cluster by name; read lock-free on the retry path.
	clusters sync.Map
}

// New creates the metrics and registers them on reg. It panics if reg
// already holds metrics of the same names, as prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_requests_total",
			Help: "HTTP and gRPC requests; reason is the x-weft-error reason of responses the sidecar generated itself."},
			[]string{"direction", "source", "destination", "protocol", "code", "grpc_status", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_proxy_request_duration_seconds",
			Help: "Request latency as the sidecar saw it.", Buckets: DurationBuckets},
			[]string{"direction", "source", "destination", "protocol"}),
		tcpOpened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_tcp_connections_opened_total",
			Help: "TCP connections opened."}, []string{"direction", "destination"}),
		tcpClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_tcp_connections_closed_total",
			Help: "TCP connections closed."}, []string{"direction", "destination"}),
		tcpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_tcp_bytes_total",
			Help: "Bytes proxied over TCP: received from or sent to the downstream peer."}, []string{"direction", "destination", "flow"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_proxy_breaker_state",
			Help: "Per-host circuit breaker state: 0 closed, 1 half-open, 2 open."}, []string{"cluster", "host"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_outlier_ejections_total",
			Help: "Hosts ejected by outlier detection."}, []string{"cluster"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_retries_total",
			Help: "Retried request attempts."}, []string{"cluster"}),
		xdsAcks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_xds_acks_total",
			Help: "xDS responses accepted, by resource type."}, []string{"type"}),
		xdsNacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_xds_nacks_total",
			Help: "xDS responses rejected, by resource type."}, []string{"type"}),
		status: newStatusCollector(time.Now),
		routes: map[routeKey]*Route{},
		tcp:    map[tcpKey]*TCP{},
	}
	for _, t := range xdsTypes {
		m.xdsAcks.WithLabelValues(t)
		m.xdsNacks.WithLabelValues(t)
	}
	reg.MustRegister(m.requests, m.duration, m.tcpOpened, m.tcpClosed, m.tcpBytes,
		m.breaker, m.ejections, m.retries, m.xdsAcks, m.xdsNacks, m.status)
	return m
}

// XDSAck counts an accepted xDS response of typeURL. The xDS client calls
// it after each ACK it sends.
func (m *Metrics) XDSAck(typeURL string) { m.xdsAcks.WithLabelValues(shortType(typeURL)).Inc() }

// XDSNack counts a rejected xDS response of typeURL.
func (m *Metrics) XDSNack(typeURL string) { m.xdsNacks.WithLabelValues(shortType(typeURL)).Inc() }

// shortType turns a type URL into the type label, as the control plane's
// metrics do: "type.googleapis.com/envoy.config.listener.v3.Listener" →
// "Listener".
func shortType(typeURL string) string {
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}
