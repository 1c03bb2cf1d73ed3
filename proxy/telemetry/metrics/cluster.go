package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cluster is the resilience metrics of one upstream cluster: retries,
// outlier ejections, per-host breaker states and panic mode. A nil
// *Cluster records nothing.
type Cluster struct {
	name                       string
	breaker                    *prometheus.GaugeVec
	retries, ejections, panics prometheus.Counter
	panic                      prometheus.Gauge
}

// Cluster returns the handle of a cluster, the same one for the same name.
// Once a name has been seen, it takes no lock.
func (m *Metrics) Cluster(name string) *Cluster {
	if c, ok := m.clusters.Load(name); ok {
		return c.(*Cluster)
	}
	c, _ := m.clusters.LoadOrStore(name, &Cluster{
		name:      name,
		breaker:   m.breaker,
		retries:   m.retries.WithLabelValues(name),
		ejections: m.ejections.WithLabelValues(name),
		panic:     m.panic.WithLabelValues(name),
		panics:    m.panics.WithLabelValues(name),
	})
	return c.(*Cluster)
}

// Retried counts one retried attempt (not the first attempt).
func (c *Cluster) Retried() {
	if c != nil {
		c.retries.Inc()
	}
}

// Ejected counts a host ejected by outlier detection (a breaker opening).
func (c *Cluster) Ejected() {
	if c != nil {
		c.ejections.Inc()
	}
}

// Panic sets the cluster's panic mode, counting each entry. Call it when
// the mode changes.
func (c *Cluster) Panic(on bool) {
	if c == nil {
		return
	}
	if !on {
		c.panic.Set(0)
		return
	}
	c.panic.Set(1)
	c.panics.Inc()
}

// BreakerState sets host's breaker state. Call it from the breaker's
// OnStateChange; hosts are "address:port".
func (c *Cluster) BreakerState(host string, s BreakerState) {
	if c != nil {
		c.breaker.WithLabelValues(c.name, host).Set(float64(s))
	}
}

// ForgetHost drops the breaker state of a host that left cluster, so
// that a removed host does not report its last state forever.
func (m *Metrics) ForgetHost(cluster, host string) {
	m.breaker.DeleteLabelValues(cluster, host)
}

// ForgetCluster drops every series of a cluster that was removed (its
// breaker states, retries, ejections and panic mode) and its handle: a cluster of the
// same name added later starts from zero, as Envoy's stats of a new
// cluster do. A handle still held counts into series no longer exported.
func (m *Metrics) ForgetCluster(name string) {
	m.clusters.Delete(name)
	m.breaker.DeletePartialMatch(prometheus.Labels{"cluster": name})
	m.retries.DeleteLabelValues(name)
	m.ejections.DeleteLabelValues(name)
	m.panic.DeleteLabelValues(name)
	m.panics.DeleteLabelValues(name)
}
