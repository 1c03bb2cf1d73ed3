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
// noting what Weft does not apply: TLS towards outside clients, and the
// per-service limits, header changes and passive health checks.
func convertIngressGateways(entries []api.ConfigEntry) map[string]*catalog.IngressGateway {
	out := map[string]*catalog.IngressGateway{}
	for _, e := range entries {
		ig, ok := e.(*api.IngressGatewayConfigEntry)
		if !ok || ig == nil {
			continue
		}
		gw := &catalog.IngressGateway{Name: ig.Name, ModifyIndex: ig.ModifyIndex}
		var u unsupported
		u.setBool("TLS.Enabled", ig.TLS.Enabled)
		if ig.TLS.SDS != nil {
			u.set("TLS.SDS.ClusterName", ig.TLS.SDS.ClusterName)
		}
		if ig.Defaults != nil {
			u.list = append(u.list, "Defaults (limits and passive health check of every service)")
		}
		for i, l := range ig.Listeners {
			field := fmt.Sprintf("Listeners[%d]", i)
			if l.TLS != nil && l.TLS.Enabled {
				u.setBool(field+".TLS.Enabled", true)
			}
			out := catalog.IngressListener{Port: l.Port, Protocol: l.Protocol}
			for k, s := range l.Services {
				sf := fmt.Sprintf("%s.Services[%d]", field, k)
				u.tenancy(sf, s.Namespace, s.Partition, "")
				if s.TLS != nil || s.RequestHeaders != nil || s.ResponseHeaders != nil || s.MaxConnections != nil ||
					s.MaxPendingRequests != nil || s.MaxConcurrentRequests != nil || s.PassiveHealthCheck != nil {
					u.list = append(u.list, sf+" (TLS, header changes, limits or passive health check)")
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
