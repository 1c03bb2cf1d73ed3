package discovery

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// Terminating gateways. Sidecars need nothing new to call a linked
// service: Consul answers its /v1/health/connect query with the
// terminating gateways linked to it (convertConnectEntries keeps them as
// the service's endpoints). The gateway itself needs the services linked
// to it, as Consul resolves its terminating-gateway entry, and their
// instances: one watch of /v1/catalog/gateway-services per terminating
// gateway, one health watch per linked service. Like the peering watches
// they do not hold back the first snapshot.

// terminatingState is what the terminating-gateway watches found. It
// belongs to the coordinator goroutine; its values are immutable once
// stored.
type terminatingState struct {
	links  map[string]*catalog.TerminatingGateway // by gateway service name
	linked map[string][]catalog.Endpoint          // by linked service name

	linkWatches, linkedWatches watchSet
}

// syncTerminating keeps one gateway-services watch per terminating
// gateway service and one health watch per service linked to any. It runs
// once per debounce window, before a snapshot is built.
func (c *coordinator) syncTerminating(ctx context.Context) {
	ps, ts := &c.state.peering, &c.state.terminating
	var gateways []string
	for name, gws := range ps.gateways {
		for _, gw := range gws {
			if gw.proxy.Kind == catalog.KindTerminatingGateway {
				gateways = append(gateways, name)
				break
			}
		}
	}
	for _, gone := range ts.linkWatches.sync(ctx, c, gateways, c.watchLinks) {
		delete(ts.links, gone)
	}
	var services []string
	for _, name := range gateways {
		if gw := ts.links[name]; gw != nil {
			for _, s := range gw.Services {
				services = append(services, s.Name)
			}
		}
	}
	slices.Sort(services)
	for _, gone := range ts.linkedWatches.sync(ctx, c, slices.Compact(services), c.watchLinked) {
		delete(ts.linked, gone)
	}
}

// watchLinks watches the services linked to one terminating gateway.
func (c *coordinator) watchLinks(ctx context.Context, gateway string, gen uint64) {
	fetch := func(q *api.QueryOptions) (*catalog.TerminatingGateway, uint64, error) {
		links, meta, err := c.env.client.Catalog().GatewayServices(gateway, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch services linked to terminating gateway %q: %w", gateway, err)
		}
		return convertLinks(gateway, links), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "catalog/gateway-services/"+gateway, fetch, func(ctx context.Context, gw *catalog.TerminatingGateway) bool {
		return c.send(ctx, func(context.Context) {
			ts := &c.state.terminating
			if !ts.linkWatches.current(gateway, gen) {
				return
			}
			if ts.links == nil {
				ts.links = map[string]*catalog.TerminatingGateway{}
			}
			ts.links[gateway] = gw
		})
	})
}

// convertLinks converts a terminating gateway's linked services, sorted
// by name; entries of other gateway kinds are skipped.
func convertLinks(gateway string, links []*api.GatewayService) *catalog.TerminatingGateway {
	gw := &catalog.TerminatingGateway{Name: gateway}
	for _, l := range links {
		if l == nil || l.GatewayKind != api.ServiceKindTerminatingGateway {
			continue
		}
		gw.Services = append(gw.Services, catalog.LinkedService{
			Name: l.Service.Name, CAFile: l.CAFile, CertFile: l.CertFile, KeyFile: l.KeyFile, SNI: l.SNI,
		})
	}
	slices.SortFunc(gw.Services, func(a, b catalog.LinkedService) int { return cmp.Compare(a.Name, b.Name) })
	return gw
}

// watchLinked watches the instances of one service linked to a
// terminating gateway, with their health.
func (c *coordinator) watchLinked(ctx context.Context, service string, gen uint64) {
	fetch := func(q *api.QueryOptions) ([]catalog.Endpoint, uint64, error) {
		entries, meta, err := c.env.client.Health().Service(service, "", false, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch service %q linked to a terminating gateway: %w", service, err)
		}
		return convertLinkedInstances(entries), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "health/service/"+service, fetch, func(ctx context.Context, eps []catalog.Endpoint) bool {
		return c.send(ctx, func(context.Context) {
			ts := &c.state.terminating
			if !ts.linkedWatches.current(service, gen) {
				return
			}
			if ts.linked == nil {
				ts.linked = map[string][]catalog.Endpoint{}
			}
			ts.linked[service] = eps
		})
	})
}

// convertLinkedInstances converts the instances of a linked service (of
// kind "typical": no proxies or gateways), sorted.
func convertLinkedInstances(entries []*api.ServiceEntry) []catalog.Endpoint {
	var out []catalog.Endpoint
	for _, e := range entries {
		if e == nil || e.Service == nil || e.Service.Kind != api.ServiceKindTypical {
			continue
		}
		out = append(out, convertEndpoint(e))
	}
	slices.SortFunc(out, func(a, b catalog.Endpoint) int {
		return cmp.Or(cmp.Compare(a.ProxyID, b.ProxyID), cmp.Compare(a.Node, b.Node))
	})
	return out
}

// addTo adds what the terminating-gateway watches found to a snapshot
// being built.
func (ts *terminatingState) addTo(snap *catalog.Snapshot) {
	snap.TerminatingGateways = maps.Clone(ts.links)
	snap.LinkedInstances = maps.Clone(ts.linked)
}
