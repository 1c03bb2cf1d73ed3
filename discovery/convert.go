package discovery

import (
	"cmp"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// defaultLocalAddress is where Consul assumes a sidecar's application and
// upstream listeners are when the registration does not say.
const defaultLocalAddress = "127.0.0.1"

// serviceResult is what one /v1/health/connect/<service> answer contributes
// to a snapshot: the sidecars fronting the service and their endpoints.
// It is immutable once built.
type serviceResult struct {
	proxies   []*catalog.Proxy   // sorted by ID, then Node
	endpoints []catalog.Endpoint // sorted by ProxyID, then Node
}

// convertConnectEntries converts the answer of /v1/health/connect/<service>
// (with passing=false): sidecars (connect-proxy registrations) and, for a
// service linked to a terminating gateway, the gateway's instances, which
// are the service's endpoints but no proxy of it. Other entries
// (connect-native services) are skipped: Weft only configures sidecars.
func convertConnectEntries(service string, entries []*api.ServiceEntry) serviceResult {
	var r serviceResult
	for _, e := range entries {
		switch {
		case e == nil || e.Service == nil:
		case e.Service.Kind == api.ServiceKindTerminatingGateway:
			// Consul answers for a service linked to a terminating
			// gateway with the gateway: sidecars dial it as the service,
			// and transparent ones by the service's virtual IP, which
			// Consul tags on the gateway per linked service.
			ep := convertEndpoint(e)
			ep.VirtualIP = e.Service.TaggedAddresses[virtualIPTag+":"+service].Address
			r.endpoints = append(r.endpoints, ep)
		case e.Service.Kind == api.ServiceKindConnectProxy && e.Service.Proxy != nil:
			r.proxies = append(r.proxies, convertProxy(e))
			r.endpoints = append(r.endpoints, convertEndpoint(e))
		}
	}
	slices.SortFunc(r.proxies, func(a, b *catalog.Proxy) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Node, b.Node))
	})
	slices.SortFunc(r.endpoints, func(a, b catalog.Endpoint) int {
		return cmp.Or(cmp.Compare(a.ProxyID, b.ProxyID), cmp.Compare(a.Node, b.Node))
	})
	return r
}

// convertProxy converts one connect-proxy entry; e.Service.Proxy must be
// set.
func convertProxy(e *api.ServiceEntry) *catalog.Proxy {
	s, p := e.Service, e.Service.Proxy
	return &catalog.Proxy{
		ID:              s.ID,
		Name:            s.Service,
		Node:            nodeName(e.Node),
		Address:         serviceAddress(e),
		Port:            s.Port,
		DestinationName: p.DestinationServiceName,
		DestinationID:   p.DestinationServiceID,
		LocalAddress:    cmp.Or(p.LocalServiceAddress, defaultLocalAddress),
		LocalPort:       p.LocalServicePort,
		Protocol:        protocolOf(p.Config),
		Upstreams:       convertUpstreams(p.Upstreams),
		Mode:            string(p.Mode),
		// Consul itself reads the port only in transparent mode.
		OutboundListenerPort: outboundListenerPort(p),
	}
}

// outboundListenerPort is transparent_proxy.outbound_listener_port, 0
// when unset.
func outboundListenerPort(p *api.AgentServiceConnectProxyConfig) int {
	if p.TransparentProxy == nil {
		return 0
	}
	return p.TransparentProxy.OutboundListenerPort
}

// virtualIPTag is the tagged address under which Consul stores the
// virtual IP it assigned to a sidecar's destination service.
const virtualIPTag = "consul-virtual"

// convertUpstreams converts a sidecar's upstreams, keeping their order.
// Upstreams the catalog cannot express are skipped: prepared-query
// destinations and listeners on a unix socket instead of a port.
func convertUpstreams(in []api.Upstream) []catalog.Upstream {
	var out []catalog.Upstream
	for _, u := range in {
		if u.DestinationType == api.UpstreamDestTypePreparedQuery || u.LocalBindSocketPath != "" {
			continue
		}
		config, problems := parseUpstreamConfigMap(u.Config)
		out = append(out, catalog.Upstream{
			DestinationName:  u.DestinationName,
			Datacenter:       u.Datacenter,
			Peer:             u.DestinationPeer,
			MeshGatewayMode:  string(u.MeshGateway.Mode),
			LocalBindAddress: cmp.Or(u.LocalBindAddress, defaultLocalAddress),
			LocalBindPort:    u.LocalBindPort,
			Protocol:         protocolOf(u.Config),
			Config:           config,
			ConfigProblems:   problems,
		})
	}
	return out
}

// convertEndpoint converts one connect-proxy entry into the endpoint it
// offers for its destination service.
//
// The weights are the sidecar registration's, which is what Consul's own
// xDS server uses: a sidecar_service does not inherit the application's
// weights (set them in the sidecar_service stanza). A registration without
// weights gets Consul's default of 1 and 1.
func convertEndpoint(e *api.ServiceEntry) catalog.Endpoint {
	w := e.Service.Weights
	if w.Passing == 0 && w.Warning == 0 {
		w = api.AgentWeights{Passing: 1, Warning: 1}
	}
	return catalog.Endpoint{
		ProxyID:       e.Service.ID,
		Node:          nodeName(e.Node),
		Address:       serviceAddress(e),
		Port:          e.Service.Port,
		Health:        aggregateHealth(e.Checks),
		WeightPassing: w.Passing,
		WeightWarning: w.Warning,
		Tags:          nilIfNoTags(e.Service.Tags),
		Meta:          nilIfEmpty(e.Service.Meta),
		VirtualIP:     e.Service.TaggedAddresses[virtualIPTag].Address,
	}
}

// nilIfNoTags keeps endpoints without tags equal whether Consul sent no
// list or an empty one.
func nilIfNoTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return slices.Clone(tags)
}

// convertServiceDefaults converts the list of service-defaults entries.
func convertServiceDefaults(entries []api.ConfigEntry) map[string]*catalog.ServiceDefaults {
	out := make(map[string]*catalog.ServiceDefaults, len(entries))
	for _, e := range entries {
		sd, ok := e.(*api.ServiceConfigEntry)
		if !ok || sd == nil {
			continue
		}
		var u unsupported
		out[sd.Name] = &catalog.ServiceDefaults{
			Name:             sd.Name,
			Protocol:         normalizeProtocol(sd.Protocol),
			UpstreamConfig:   convertUpstreamConfiguration(sd.UpstreamConfig, &u),
			Mode:             string(sd.Mode),
			TransparentProxy: convertTransparentProxy(sd.TransparentProxy, &u),
			MeshGatewayMode:  string(sd.MeshGateway.Mode),
		}
		unsupportedServiceDefaults(sd, &u)
		out[sd.Name].Unsupported, out[sd.Name].ModifyIndex = u.versioned(sd.ModifyIndex)
	}
	return out
}

// convertProxyDefaults picks the global entry from the list of
// proxy-defaults entries; nil when there is none.
func convertProxyDefaults(entries []api.ConfigEntry) *catalog.ProxyDefaults {
	for _, e := range entries {
		pd, ok := e.(*api.ProxyConfigEntry)
		if !ok || pd == nil || pd.Name != api.ProxyConfigGlobal {
			continue
		}
		var u unsupported
		out := &catalog.ProxyDefaults{Protocol: protocolOf(pd.Config), Mode: string(pd.Mode),
			TransparentProxy: convertTransparentProxy(pd.TransparentProxy, &u), MeshGatewayMode: string(pd.MeshGateway.Mode)}
		unsupportedProxyDefaults(pd, &u)
		out.Unsupported, out.ModifyIndex = u.versioned(pd.ModifyIndex)
		return out
	}
	return nil
}

// convertTransparentProxy reads a transparent_proxy block of a config
// entry. DialedDirectly (instances dialled at their own addresses through
// the transparent proxy) is not applied and noted.
func convertTransparentProxy(tp *api.TransparentProxyConfig, u *unsupported) catalog.TransparentProxy {
	if tp == nil {
		return catalog.TransparentProxy{}
	}
	if tp.DialedDirectly {
		u.set("TransparentProxy.DialedDirectly", "true")
	}
	return catalog.TransparentProxy{OutboundListenerPort: tp.OutboundListenerPort}
}

// convertMesh picks the mesh entry from the list of mesh entries; nil
// when there is none.
func convertMesh(entries []api.ConfigEntry) *catalog.Mesh {
	for _, e := range entries {
		if m, ok := e.(*api.MeshConfigEntry); ok && m != nil {
			var u unsupported
			unsupportedMesh(m, &u)
			out := &catalog.Mesh{MeshDestinationsOnly: m.TransparentProxy.MeshDestinationsOnly}
			if tls := m.TLS; tls != nil {
				out.TLSIncoming, out.TLSOutgoing = meshTLS(tls.Incoming), meshTLS(tls.Outgoing)
			}
			out.Unsupported, out.ModifyIndex = u.versioned(m.ModifyIndex)
			return out
		}
	}
	return nil
}

// meshTLS converts one direction of the mesh entry's TLS; nil when unset.
func meshTLS(c *api.MeshDirectionalTLSConfig) *catalog.TLSParams {
	if c == nil || (c.TLSMinVersion == "" && c.TLSMaxVersion == "" && len(c.CipherSuites) == 0) {
		return nil
	}
	return &catalog.TLSParams{MinVersion: string(c.TLSMinVersion), MaxVersion: string(c.TLSMaxVersion), CipherSuites: slices.Clone(c.CipherSuites)}
}

// protocolOf returns the "protocol" key of an opaque proxy config, in
// lower case as Consul reads it; empty when absent or not a string.
func protocolOf(config map[string]any) string {
	s, _ := config["protocol"].(string)
	return normalizeProtocol(s)
}

func normalizeProtocol(p string) string {
	return strings.ToLower(strings.TrimSpace(p))
}

// serviceAddress is the address of the registration, else of its node.
func serviceAddress(e *api.ServiceEntry) string {
	if e.Service.Address != "" {
		return e.Service.Address
	}
	if e.Node != nil {
		return e.Node.Address
	}
	return ""
}

func nodeName(n *api.Node) string {
	if n == nil {
		return ""
	}
	return n.Node
}
