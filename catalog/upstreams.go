package catalog

import "time"

// UpstreamConfiguration is a service-defaults entry's upstream_config: how
// the service's sidecars treat their upstreams.
type UpstreamConfiguration struct {
	// Defaults apply to every upstream of the service.
	Defaults *UpstreamConfig
	// Overrides by upstream service name; each replaces the matching
	// top-level fields (Protocol, ConnectTimeout, Limits,
	// PassiveHealthCheck) of Defaults.
	Overrides map[string]*UpstreamConfig
}

// UpstreamConfig is the per-upstream configuration Consul keeps in a
// service-defaults entry's upstream_config or in the "config" map of an
// upstream in a sidecar registration. Each top-level field that is set
// replaces the same field of a less specific source whole, as in Consul:
// registration "config" > Overrides[name] > Defaults.
type UpstreamConfig struct {
	// Protocol overrides the upstream service's protocol. (In a
	// registration's config map it is read into Upstream.Protocol.)
	Protocol string
	// ConnectTimeout (Consul's ConnectTimeoutMs) bounds new connections;
	// zero means unset.
	ConnectTimeout time.Duration
	Limits         *UpstreamLimits
	// PassiveHealthCheck ejects instances that keep failing.
	PassiveHealthCheck *PassiveHealthCheck
}

// UpstreamLimits cap what one sidecar sends to one upstream. Nil fields are
// unset.
type UpstreamLimits struct {
	MaxConnections        *int
	MaxPendingRequests    *int
	MaxConcurrentRequests *int
}

// PassiveHealthCheck is Consul's outlier detection. Zero values and nil
// pointers are unset.
type PassiveHealthCheck struct {
	// Interval between ejection sweeps.
	Interval time.Duration
	// MaxFailures is the number of consecutive failures (5xx responses,
	// or connection failures) that ejects an instance.
	MaxFailures uint32
	// EnforcingConsecutive5xx is the percent chance an instance that
	// reached MaxFailures is ejected (0 to 100).
	EnforcingConsecutive5xx *uint32
	// MaxEjectionPercent caps the share of instances ejected at once
	// (0 to 100); at least one instance may always be ejected.
	MaxEjectionPercent *uint32
	// BaseEjectionTime is how long a first ejection lasts.
	BaseEjectionTime *time.Duration
}
