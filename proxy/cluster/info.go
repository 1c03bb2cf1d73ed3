package cluster

import (
	"maps"
	"slices"
)

// Info describes a cluster for the admin API.
type Info struct {
	Name string `json:"name"`
	// Panic reports panic mode: too few hosts are available (healthy in
	// EDS and not ejected), so requests are balanced over unhealthy hosts
	// too (common_lb_config.healthy_panic_threshold).
	Panic bool `json:"panic,omitempty"`
	// Hosts are the cluster's endpoints in configuration order.
	Hosts []HostInfo `json:"hosts"`
	// ActiveRequests, PendingRequests and ActiveRetries are the cluster's
	// circuit breaker counters.
	ActiveRequests  int64 `json:"active_requests"`
	PendingRequests int64 `json:"pending_requests"`
	ActiveRetries   int64 `json:"active_retries"`
}

// HostInfo describes one endpoint of a cluster.
type HostInfo struct {
	Address string `json:"address"`
	// InstanceID is the Consul instance behind the host, from EDS.
	InstanceID string `json:"instance_id,omitempty"`
	// Healthy is the endpoint's health from EDS (HEALTHY or UNKNOWN).
	Healthy  bool   `json:"healthy"`
	Weight   uint32 `json:"weight"`
	Priority uint32 `json:"priority"`
	// Breaker is the outlier-detection breaker: "closed", "half-open" or
	// "open"; closed for clusters without outlier detection.
	Breaker string `json:"breaker"`
	// Ejected reports whether outlier detection has taken the host out of
	// service (ejected, or waiting for its probe).
	Ejected        bool  `json:"ejected"`
	ActiveRequests int64 `json:"active_requests"`
}

// Info describes the current clusters, sorted by name. It reads atomics
// only and never blocks the request path.
func (m *Manager) Info() []Info {
	clusters := *m.clusters.Load()
	out := make([]Info, 0, len(clusters))
	for _, name := range slices.Sorted(maps.Keys(clusters)) {
		out = append(out, clusters[name].info())
	}
	return out
}

func (c *Cluster) info() Info {
	st := c.state.Load()
	in := Info{Name: c.name, Panic: st.panic, Hosts: make([]HostInfo, 0, len(st.hosts)),
		ActiveRequests: c.requests.Load(), PendingRequests: c.pending.Load(), ActiveRetries: c.retries.Load()}
	for _, e := range st.hosts {
		in.Hosts = append(in.Hosts, HostInfo{
			Address: e.ep.Address, InstanceID: e.ep.InstanceID, Healthy: e.ep.Healthy, Weight: e.ep.Weight, Priority: e.ep.Priority,
			Breaker: e.host.outlier.Breaker().String(), Ejected: e.host.outlier.Ejected(), ActiveRequests: e.host.active.Load(),
		})
	}
	return in
}
