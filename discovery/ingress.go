package discovery

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// watchIngressGateways watches the ingress-gateway config entries. Like
// the peering watches it does not hold back the first snapshot: only
// ingress gateways depend on it.
func (c *coordinator) watchIngressGateways(ctx context.Context) {
	fetch := func(q *api.QueryOptions) (map[string]*catalog.IngressGateway, uint64, error) {
		entries, meta, err := c.env.client.ConfigEntries().List(api.IngressGateway, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch ingress-gateway entries: %w", err)
		}
		return convertIngressGateways(entries), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "config/ingress-gateway", fetch, func(ctx context.Context, gws map[string]*catalog.IngressGateway) bool {
		return c.send(ctx, func(context.Context) { c.state.peering.ingress = gws })
	})
}

// convertIngressGateways converts the ingress-gateway entries by name,
// with their TLS towards outside clients (gateway-level and per
// listener), noting what Weft does not apply: certificates from an
// external SDS cluster (gateway, listener or service), and the
// per-service limits, header changes and passive health checks.
func convertIngressGateways(entries []api.ConfigEntry) map[string]*catalog.IngressGateway {
	out := map[string]*catalog.IngressGateway{}
	for _, e := range entries {
		ig, ok := e.(*api.IngressGatewayConfigEntry)
		if !ok || ig == nil {
			continue
		}
		gw := &catalog.IngressGateway{Name: ig.Name, ModifyIndex: ig.ModifyIndex, TLS: ingressTLS(ig.TLS)}
		var u unsupported
		u.sds("TLS.SDS", ig.TLS.SDS)
		if ig.Defaults != nil {
			u.list = append(u.list, "Defaults (limits and passive health check of every service)")
		}
		for i, l := range ig.Listeners {
			field := fmt.Sprintf("Listeners[%d]", i)
			out := catalog.IngressListener{Port: l.Port, Protocol: l.Protocol}
			if l.TLS != nil {
				tls := ingressTLS(*l.TLS)
				out.TLS = &tls
				u.sds(field+".TLS.SDS", l.TLS.SDS)
			}
			for k, s := range l.Services {
				sf := fmt.Sprintf("%s.Services[%d]", field, k)
				u.tenancy(sf, s.Namespace, s.Partition, "")
				if s.TLS != nil {
					u.sds(sf+".TLS.SDS", s.TLS.SDS)
				}
				if s.RequestHeaders != nil || s.ResponseHeaders != nil || s.MaxConnections != nil ||
					s.MaxPendingRequests != nil || s.MaxConcurrentRequests != nil || s.PassiveHealthCheck != nil {
					u.list = append(u.list, sf+" (header changes, limits or passive health check)")
				}
				out.Services = append(out.Services, catalog.IngressService{Name: s.Name, Hosts: s.Hosts})
			}
			gw.Listeners = append(gw.Listeners, out)
		}
		gw.Unsupported = u.list
		out[ig.Name] = gw
	}
	return out
}

// ingressTLS is the part of an entry's TLS that Weft applies.
func ingressTLS(t api.GatewayTLSConfig) catalog.IngressTLS {
	return catalog.IngressTLS{Enabled: t.Enabled, MinVersion: t.TLSMinVersion, MaxVersion: t.TLSMaxVersion, CipherSuites: t.CipherSuites}
}

// sds notes a certificate from an external SDS cluster, which Weft does
// not fetch (it serves the gateway a leaf of the mesh's CA instead).
func (u *unsupported) sds(field string, sds *api.GatewayTLSSDSConfig) {
	if sds != nil && (sds.ClusterName != "" || sds.CertResource != "") {
		u.list = append(u.list, fmt.Sprintf("%s (ClusterName %q, CertResource %q: certificates from an external SDS cluster)", field, sds.ClusterName, sds.CertResource))
	}
}
