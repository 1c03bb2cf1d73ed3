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
	// Aggregate describes an aggregate cluster's children; nil for other
	// clusters. An aggregate cluster has no hosts nor counters of its
	// own, and Panic reports its total panic: no child has an available
	// host.
	Aggregate *AggregateInfo `json:"aggregate,omitempty"`
}

// AggregateInfo describes the children of an aggregate cluster.
type AggregateInfo struct {
	// Children are the child clusters in priority order.
	Children []ChildInfo `json:"children"`
	// Active is the child that takes new requests now, the first with a
	// share; "" when none can take any.
	Active string `json:"active"`
}

// ChildInfo is one child of an aggregate cluster.
type ChildInfo struct {
	Name string `json:"name"`
	// Share is the percentage of new requests the child takes now, from
	// its health and the children's before it.
	Share int `json:"share"`
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
	if st.cfg.Aggregate != nil {
		return aggregateInfo(c.name, st)
	}
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

func aggregateInfo(name string, st *state) Info {
	in := Info{Name: name, Hosts: []HostInfo{}, Aggregate: &AggregateInfo{Children: make([]ChildInfo, 0, len(st.children))}}
	shares, panic := shares(st.children, st.cfg.LB.PanicThreshold)
	for i, child := range st.children {
		in.Aggregate.Children = append(in.Aggregate.Children, ChildInfo{Name: child.name, Share: shares[i]})
		if shares[i] > 0 && in.Aggregate.Active == "" {
			in.Aggregate.Active = child.name
		}
	}
	in.Panic = panic && in.Aggregate.Active != ""
	return in
}
