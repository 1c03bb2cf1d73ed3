package discovery

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// The functions here note the fields of service-defaults, proxy-defaults
// and mesh entries that are set but that weft-proxy does not apply, so
// none is dropped silently. docs/consul.md lists every field and what
// Weft does with it; keep the two in step.

// unsupportedServiceDefaults notes the settings of a service-defaults
// entry that weft-proxy does not apply. Consul 1.14 stores the first
// group; the rest need a newer Consul: permissive mTLS (Weft's inbound
// listeners always require mTLS, which is "strict"), rate limits and Envoy
// extensions.
func unsupportedServiceDefaults(sd *api.ServiceConfigEntry, u *unsupported) {
	u.expose(sd.Expose)
	u.set("ExternalSNI", sd.ExternalSNI)
	if d := sd.Destination; d != nil {
		u.set("Destination", fmt.Sprintf("addresses=%s port=%d", strings.Join(d.Addresses, ","), d.Port))
	}
	u.setInt("MaxInboundConnections", sd.MaxInboundConnections)
	u.setInt("LocalConnectTimeoutMs", sd.LocalConnectTimeoutMs)
	u.setInt("LocalRequestTimeoutMs", sd.LocalRequestTimeoutMs)
	u.set("BalanceInboundConnections", sd.BalanceInboundConnections)

	if sd.MutualTLSMode != api.MutualTLSModeStrict {
		u.set("MutualTLSMode", string(sd.MutualTLSMode))
	}
	if rl := sd.RateLimits; rl != nil {
		if rl.InstanceLevel.RequestsPerSecond != 0 || rl.InstanceLevel.RequestsMaxBurst != 0 {
			u.set("RateLimits.InstanceLevel", fmt.Sprintf("requests_per_second=%d requests_max_burst=%d",
				rl.InstanceLevel.RequestsPerSecond, rl.InstanceLevel.RequestsMaxBurst))
		}
		for i, r := range rl.InstanceLevel.Routes {
			u.set(fmt.Sprintf("RateLimits.InstanceLevel.Routes[%d]", i), fmt.Sprintf("requests_per_second=%d", r.RequestsPerSecond))
		}
	}
	u.envoyExtensions(sd.EnvoyExtensions)
}

// unsupportedProxyDefaults notes the settings of the proxy-defaults entry
// that weft-proxy does not apply: every Config key but protocol, mesh
// gateways and exposed paths; and, from newer Consuls, the rest.
func unsupportedProxyDefaults(pd *api.ProxyConfigEntry, u *unsupported) {
	u.configKeys("Config", pd.Config)
	u.expose(pd.Expose)

	if pd.MutualTLSMode != api.MutualTLSModeStrict {
		u.set("MutualTLSMode", string(pd.MutualTLSMode))
	}
	if al := pd.AccessLogs; al != nil && al.Enabled {
		u.set("AccessLogs.Enabled", "true")
	}
	u.envoyExtensions(pd.EnvoyExtensions)
	if p := pd.FailoverPolicy; p != nil && (p.Mode != "" && p.Mode != "sequential" || len(p.Regions) > 0) {
		u.set("FailoverPolicy.Mode", p.Mode)
	}
	if p := pd.PrioritizeByLocality; p != nil && p.Mode != "" && p.Mode != "none" {
		u.set("PrioritizeByLocality.Mode", p.Mode)
	}
}

// unsupportedMesh notes the settings of the mesh entry that Weft does not
// apply: sanitizing x-forwarded-client-cert (weft-proxy sets it), peering
// through mesh gateways, and request normalization (newer Consuls).
func unsupportedMesh(m *api.MeshConfigEntry, u *unsupported) {
	if h := m.HTTP; h != nil {
		u.setBool("HTTP.SanitizeXForwardedClientCert", h.SanitizeXForwardedClientCert)
		if h.Incoming != nil && h.Incoming.RequestNormalization != nil {
			u.set("HTTP.Incoming.RequestNormalization", "set")
		}
	}
	if p := m.Peering; p != nil {
		u.setBool("Peering.PeerThroughMeshGateways", p.PeerThroughMeshGateways)
	}
}

// meshGateway notes a mesh gateway mode other than none where Weft does
// not read one (UpstreamConfig; the entries' own MeshGateway and the
// registration's upstreams are applied to peered upstreams).
func (u *unsupported) meshGateway(field string, mg api.MeshGatewayConfig) {
	if mg.Mode != api.MeshGatewayModeNone {
		u.set(field+".Mode", string(mg.Mode))
	}
}

// expose notes exposed paths: weft-proxy opens no listener for them.
func (u *unsupported) expose(e api.ExposeConfig) {
	u.setBool("Expose.Checks", e.Checks)
	for i, p := range e.Paths {
		u.set(fmt.Sprintf("Expose.Paths[%d]", i), fmt.Sprintf("path=%s listener_port=%d local_path_port=%d", p.Path, p.ListenerPort, p.LocalPathPort))
	}
}

func (u *unsupported) envoyExtensions(exts []api.EnvoyExtension) {
	for i, e := range exts {
		u.set(fmt.Sprintf("EnvoyExtensions[%d].Name", i), e.Name)
	}
}

// configKeys notes every key of an opaque proxy config but protocol.
// Envoy's escape hatches (envoy_*) say so: they configure Envoy, which
// weft-proxy is not.
func (u *unsupported) configKeys(field string, config map[string]any) {
	for _, key := range slices.Sorted(maps.Keys(config)) {
		if normalizeKey(key) == "protocol" {
			continue
		}
		value := fmt.Sprint(config[key])
		if strings.HasPrefix(strings.ToLower(key), "envoy_") {
			u.escapeHatch(field+"."+key, value)
			continue
		}
		u.set(field+"."+key, abbreviate(value))
	}
}

// escapeHatch notes one of Envoy's escape hatches: raw Envoy
// configuration, which weft-proxy, not being Envoy, cannot apply.
func (u *unsupported) escapeHatch(field, value string) {
	if value != "" {
		u.list = append(u.list, fmt.Sprintf("%s = %q (an Envoy escape hatch; weft-proxy is not Envoy)", field, abbreviate(value)))
	}
}

func (u *unsupported) setInt(field string, v int) {
	if v != 0 {
		u.set(field, strconv.Itoa(v))
	}
}

func (u *unsupported) setBool(field string, v bool) {
	if v {
		u.set(field, "true")
	}
}

// abbreviate shortens a value to what a log line or a status table can
// show, at most 60 bytes, cut between characters: escape-hatch JSON can
// be kilobytes long.
func abbreviate(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := 0
	for i := range s {
		if i > max {
			break
		}
		cut = i
	}
	return s[:cut] + "…"
}

// convertExportedServices notes the exports of the exported-services entry
// (Consul CE has one, named "default") that Weft does not apply: those to
// partitions and sameness groups (exports to peers are applied, see
// convertExports). Nil when there are none.
func convertExportedServices(entries []api.ConfigEntry) *catalog.EntryNote {
	for _, e := range entries {
		es, ok := e.(*api.ExportedServicesConfigEntry)
		if !ok || es == nil || len(es.Services) == 0 {
			continue
		}
		var u unsupported
		for i, svc := range es.Services {
			var to []string
			for _, c := range svc.Consumers {
				if c.Peer == "" {
					to = append(to, cmp.Or(prefixed("partition ", c.Partition), prefixed("sameness group ", c.SamenessGroup)))
				}
			}
			if len(to) > 0 {
				u.set(fmt.Sprintf("Services[%d]", i), fmt.Sprintf("%s to %s", svc.Name, strings.Join(to, ", ")))
			}
		}
		if len(u.list) == 0 {
			return nil
		}
		return &catalog.EntryNote{Kind: catalog.KindExportedServices, Name: es.Name, ModifyIndex: es.ModifyIndex, Fields: u.list}
	}
	return nil
}

// prefixed is prefix+s, or "" when s is.
func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
