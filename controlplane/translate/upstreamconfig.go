package translate

import (
	"cmp"
	"fmt"
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// upstreamSettings is what one proxy's upstream configures on every
// cluster of the upstream's chain. It is comparable and keys the cluster
// memo, so proxies whose upstreams are configured alike share clusters.
type upstreamSettings struct {
	protocol       string
	connectTimeout time.Duration // 0: unset
	limits         limitSettings
	outlier        outlierSettings
}

// unset marks a numeric setting that is not set.
const unset = -1

type limitSettings struct {
	set                                             bool
	maxConnections, maxPendingRequests, maxRequests int64 // or unset
}

type outlierSettings struct {
	set                           bool
	interval                      time.Duration // 0: unset
	consecutive5xx                uint32        // 0: unset
	enforcing, maxEjectionPercent int64         // or unset
	baseEjectionTime              time.Duration // 0: unset
}

// namedConfig is one source of an upstream's config, named for problems.
type namedConfig struct {
	name   string
	config *catalog.UpstreamConfig
}

// upstreamSettingsFor resolves a proxy's upstream config as Consul does:
// each top-level field comes from the most specific source setting it —
// the upstream's config map in the registration, then the service-defaults
// of the proxy's service (Overrides for the upstream, then Defaults). It
// also returns the protocol, and problems naming settings left out.
func (t *translator) upstreamSettingsFor(p *catalog.Proxy, u catalog.Upstream) (upstreamSettings, []string) {
	var sources []namedConfig
	if u.Config != nil {
		sources = append(sources, namedConfig{"the upstream's config", u.Config})
	}
	if sd := t.serviceDefaults(p.DestinationName); sd != nil && sd.UpstreamConfig != nil {
		if o := sd.UpstreamConfig.Overrides[u.DestinationName]; o != nil {
			sources = append(sources, namedConfig{fmt.Sprintf("service-defaults %q UpstreamConfig.Overrides[%q]", sd.Name, u.DestinationName), o})
		}
		if d := sd.UpstreamConfig.Defaults; d != nil {
			sources = append(sources, namedConfig{fmt.Sprintf("service-defaults %q UpstreamConfig.Defaults", sd.Name), d})
		}
	}
	var merged catalog.UpstreamConfig
	var problems []string
	for i := len(sources) - 1; i >= 0; i-- {
		c, ps := checkedUpstreamConfig(sources[i])
		problems = append(problems, ps...)
		mergeUpstreamConfig(&merged, c)
	}
	s := upstreamSettings{
		protocol:       cmp.Or(u.Protocol, merged.Protocol, t.protocolOf(u.DestinationName)),
		connectTimeout: merged.ConnectTimeout,
		limits:         limitsOf(merged.Limits),
		outlier:        outlierOf(merged.PassiveHealthCheck),
	}
	return s, problems
}

// mergeUpstreamConfig sets in dst every top-level field src sets.
func mergeUpstreamConfig(dst *catalog.UpstreamConfig, src catalog.UpstreamConfig) {
	if src.Protocol != "" {
		dst.Protocol = src.Protocol
	}
	if src.ConnectTimeout != 0 {
		dst.ConnectTimeout = src.ConnectTimeout
	}
	if src.Limits != nil {
		dst.Limits = src.Limits
	}
	if src.PassiveHealthCheck != nil {
		dst.PassiveHealthCheck = src.PassiveHealthCheck
	}
}

// checkedUpstreamConfig returns a copy of a source's config without the
// settings Envoy would reject, and a problem for each.
func checkedUpstreamConfig(src namedConfig) (catalog.UpstreamConfig, []string) {
	c := *src.config
	var problems []string
	drop := func(field string, value any) {
		problems = append(problems, fmt.Sprintf("%s: %s = %v is out of range and is ignored", src.name, field, value))
	}
	if c.ConnectTimeout < 0 {
		drop("ConnectTimeoutMs", c.ConnectTimeout.Milliseconds())
		c.ConnectTimeout = 0
	}
	if l := c.Limits; l != nil {
		cl := *l
		for _, f := range []struct {
			name string
			v    **int
		}{{"Limits.MaxConnections", &cl.MaxConnections}, {"Limits.MaxPendingRequests", &cl.MaxPendingRequests}, {"Limits.MaxConcurrentRequests", &cl.MaxConcurrentRequests}} {
			if *f.v != nil && (**f.v < 0 || int64(**f.v) > 1<<32-1) {
				drop(f.name, **f.v)
				*f.v = nil
			}
		}
		c.Limits = &cl
	}
	if h := c.PassiveHealthCheck; h != nil {
		ch := *h
		for _, f := range []struct {
			name string
			v    **uint32
		}{{"PassiveHealthCheck.EnforcingConsecutive5xx", &ch.EnforcingConsecutive5xx}, {"PassiveHealthCheck.MaxEjectionPercent", &ch.MaxEjectionPercent}} {
			if *f.v != nil && **f.v > 100 {
				drop(f.name, **f.v)
				*f.v = nil
			}
		}
		if ch.Interval < 0 {
			drop("PassiveHealthCheck.Interval", ch.Interval)
			ch.Interval = 0
		}
		if ch.BaseEjectionTime != nil && *ch.BaseEjectionTime <= 0 {
			drop("PassiveHealthCheck.BaseEjectionTime", *ch.BaseEjectionTime)
			ch.BaseEjectionTime = nil
		}
		c.PassiveHealthCheck = &ch
	}
	return c, problems
}

func limitsOf(l *catalog.UpstreamLimits) limitSettings {
	if l == nil {
		return limitSettings{maxConnections: unset, maxPendingRequests: unset, maxRequests: unset}
	}
	return limitSettings{
		set:                l.MaxConnections != nil || l.MaxPendingRequests != nil || l.MaxConcurrentRequests != nil,
		maxConnections:     intOrUnset(l.MaxConnections),
		maxPendingRequests: intOrUnset(l.MaxPendingRequests),
		maxRequests:        intOrUnset(l.MaxConcurrentRequests),
	}
}

func outlierOf(h *catalog.PassiveHealthCheck) outlierSettings {
	if h == nil {
		return outlierSettings{enforcing: unset, maxEjectionPercent: unset}
	}
	o := outlierSettings{
		set:                true,
		interval:           h.Interval,
		consecutive5xx:     h.MaxFailures,
		enforcing:          uintOrUnset(h.EnforcingConsecutive5xx),
		maxEjectionPercent: uintOrUnset(h.MaxEjectionPercent),
	}
	if h.BaseEjectionTime != nil {
		o.baseEjectionTime = *h.BaseEjectionTime
	}
	return o
}

func intOrUnset(p *int) int64 {
	if p == nil {
		return unset
	}
	return int64(*p)
}

func uintOrUnset(p *uint32) int64 {
	if p == nil {
		return unset
	}
	return int64(*p)
}
