package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status feeds the metrics read at scrape time, from the scraping
// goroutine. Each func is optional, must be safe for concurrent use and
// should return quickly.
type Status struct {
	// XDSConnected reports whether the ADS stream is up
	// (weft_proxy_xds_connected).
	XDSConnected func() bool
	// CertExpiry returns when the leaf certificate expires, and false
	// before there is one (weft_proxy_cert_expiry_seconds is then absent).
	CertExpiry func() (notAfter time.Time, ok bool)
	// AccessLogDropped returns how many access-log lines were dropped
	// because the writer could not keep up
	// (weft_proxy_access_log_dropped_total).
	AccessLogDropped func() uint64
}

// SetStatus sets the callbacks read at scrape time, replacing earlier ones.
func (m *Metrics) SetStatus(s Status) { m.status.fns.Store(&s) }

// statusCollector turns the Status callbacks into metrics at scrape time.
type statusCollector struct {
	now       func() time.Time
	fns       atomic.Pointer[Status]
	connected *prometheus.Desc
	expiry    *prometheus.Desc
	dropped   *prometheus.Desc
}

var _ prometheus.Collector = (*statusCollector)(nil)

func newStatusCollector(now func() time.Time) *statusCollector {
	c := &statusCollector{
		now: now,
		connected: prometheus.NewDesc("weft_proxy_xds_connected",
			"1 while the ADS stream to the control plane is up, else 0.", nil, nil),
		expiry: prometheus.NewDesc("weft_proxy_cert_expiry_seconds",
			"Seconds until the leaf certificate expires.", nil, nil),
		dropped: prometheus.NewDesc("weft_proxy_access_log_dropped_total",
			"Access-log lines dropped because the writer could not keep up.", nil, nil),
	}
	c.fns.Store(&Status{})
	return c
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.expiry
	ch <- c.dropped
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.fns.Load()
	if s.XDSConnected != nil {
		v := 0.0
		if s.XDSConnected() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, v)
	}
	if s.CertExpiry != nil {
		if notAfter, ok := s.CertExpiry(); ok {
			ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, notAfter.Sub(c.now()).Seconds())
		}
	}
	if s.AccessLogDropped != nil {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.AccessLogDropped()))
	}
}
