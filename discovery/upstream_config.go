package discovery

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// convertUpstreamConfiguration converts a service-defaults entry's
// upstream_config. Overrides that name a peer, partition or namespace, or
// no service at all, are left out and listed as unsupported.
func convertUpstreamConfiguration(c *api.UpstreamConfiguration, u *unsupported) *catalog.UpstreamConfiguration {
	if c == nil || c.Defaults == nil && len(c.Overrides) == 0 {
		return nil
	}
	out := &catalog.UpstreamConfiguration{Defaults: convertUpstreamConfig("UpstreamConfig.Defaults", c.Defaults, u)}
	for i, o := range c.Overrides {
		if o == nil {
			continue
		}
		field := fmt.Sprintf("UpstreamConfig.Overrides[%d]", i)
		before := len(u.list)
		u.tenancy(field, o.Namespace, o.Partition, o.Peer)
		if o.Name == "" {
			u.list = append(u.list, field+" has no Name")
		}
		if len(u.list) > before {
			continue
		}
		if out.Overrides == nil {
			out.Overrides = map[string]*catalog.UpstreamConfig{}
		}
		out.Overrides[o.Name] = convertUpstreamConfig(field, o, u)
	}
	return out
}

// convertUpstreamConfig converts the settings of one upstream_config
// block that weft-proxy applies, and notes the others under field.
func convertUpstreamConfig(field string, c *api.UpstreamConfig, u *unsupported) *catalog.UpstreamConfig {
	if c == nil {
		return nil
	}
	u.escapeHatch(field+".EnvoyListenerJSON", c.EnvoyListenerJSON)
	u.escapeHatch(field+".EnvoyClusterJSON", c.EnvoyClusterJSON)
	u.meshGateway(field+".MeshGateway", c.MeshGateway)
	u.set(field+".BalanceOutboundConnections", c.BalanceOutboundConnections)
	out := &catalog.UpstreamConfig{
		Protocol:       normalizeProtocol(c.Protocol),
		ConnectTimeout: time.Duration(c.ConnectTimeoutMs) * time.Millisecond,
	}
	if l := c.Limits; l != nil {
		out.Limits = &catalog.UpstreamLimits{MaxConnections: l.MaxConnections, MaxPendingRequests: l.MaxPendingRequests, MaxConcurrentRequests: l.MaxConcurrentRequests}
	}
	if p := c.PassiveHealthCheck; p != nil {
		out.PassiveHealthCheck = &catalog.PassiveHealthCheck{Interval: p.Interval, MaxFailures: p.MaxFailures,
			EnforcingConsecutive5xx: p.EnforcingConsecutive5xx, MaxEjectionPercent: p.MaxEjectionPercent, BaseEjectionTime: p.BaseEjectionTime}
	}
	return out
}

// upstreamConfigMap is the part of an upstream's opaque "config" map Weft
// reads, with Consul's key names. Keys match case-insensitively and with
// or without underscores, as Consul decodes them.
type upstreamConfigMap struct {
	ConnectTimeoutMs   int               `mapstructure:"connect_timeout_ms"`
	Limits             *limitsMap        `mapstructure:"limits"`
	PassiveHealthCheck *passiveHealthMap `mapstructure:"passive_health_check"`
}

type limitsMap struct {
	MaxConnections        *int `mapstructure:"max_connections"`
	MaxPendingRequests    *int `mapstructure:"max_pending_requests"`
	MaxConcurrentRequests *int `mapstructure:"max_concurrent_requests"`
}

type passiveHealthMap struct {
	Interval                time.Duration  `mapstructure:"interval"`
	MaxFailures             uint32         `mapstructure:"max_failures"`
	EnforcingConsecutive5xx *uint32        `mapstructure:"enforcing_consecutive_5xx"`
	MaxEjectionPercent      *uint32        `mapstructure:"max_ejection_percent"`
	BaseEjectionTime        *time.Duration `mapstructure:"base_ejection_time"`
}

// parseUpstreamConfigMap reads connect_timeout_ms, limits and
// passive_health_check from an upstream's config map. Each key is decoded
// on its own, so a bad one is reported and skipped without losing the
// others. It returns nil when none of them is set.
func parseUpstreamConfigMap(config map[string]any) (*catalog.UpstreamConfig, []string) {
	var out catalog.UpstreamConfig
	var problems []string
	set := false
	for _, key := range slices.Sorted(maps.Keys(config)) {
		var dst upstreamConfigMap
		switch normalizeKey(key) {
		case "connecttimeoutms", "limits", "passivehealthcheck":
		default:
			continue
		}
		if err := decodeLoose(map[string]any{key: config[key]}, &dst); err != nil {
			problems = append(problems, decodeProblem(err))
			continue
		}
		set = true
		if dst.ConnectTimeoutMs > 0 {
			out.ConnectTimeout = time.Duration(dst.ConnectTimeoutMs) * time.Millisecond
		}
		if l := dst.Limits; l != nil {
			out.Limits = &catalog.UpstreamLimits{MaxConnections: l.MaxConnections, MaxPendingRequests: l.MaxPendingRequests, MaxConcurrentRequests: l.MaxConcurrentRequests}
		}
		if p := dst.PassiveHealthCheck; p != nil {
			out.PassiveHealthCheck = &catalog.PassiveHealthCheck{Interval: p.Interval, MaxFailures: p.MaxFailures,
				EnforcingConsecutive5xx: p.EnforcingConsecutive5xx, MaxEjectionPercent: p.MaxEjectionPercent, BaseEjectionTime: p.BaseEjectionTime}
		}
	}
	if !set || out == (catalog.UpstreamConfig{}) {
		return nil, problems
	}
	return &out, problems
}

// decodeLoose decodes as Consul decodes opaque config: weakly typed,
// durations from strings such as "10s", a one-element list where an
// object is expected (HCL's blocks), keys without regard to case or
// underscores.
func decodeLoose(in map[string]any, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			unwrapSingletonList,
			mapstructure.StringToTimeDurationHookFunc(),
		),
		WeaklyTypedInput: true,
		MatchName:        func(key, field string) bool { return normalizeKey(key) == normalizeKey(field) },
		Result:           out,
	})
	if err != nil {
		return err
	}
	return d.Decode(in)
}

// decodeProblem shortens a decoding error to its causes, which name the
// key path ('limits.max_connections' …), on one line.
func decodeProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):")
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
}

// unwrapSingletonList turns [x] into x where a struct is expected.
func unwrapSingletonList(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.Slice {
		return data, nil
	}
	for to.Kind() == reflect.Pointer {
		to = to.Elem()
	}
	if v := reflect.ValueOf(data); to.Kind() == reflect.Struct && v.Len() == 1 {
		return v.Index(0).Interface(), nil
	}
	return data, nil
}

func normalizeKey(k string) string {
	return strings.ToLower(strings.ReplaceAll(k, "_", ""))
}
