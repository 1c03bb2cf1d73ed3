package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// watchEnv is what every watch of one Run shares. It is read-only.
type watchEnv struct {
	client     *api.Client
	cfg        Config
	datacenter string
	dnsDomains []string // the agent's DNS domains (catalog.Snapshot.DNSDomains)
	logger     *slog.Logger
	stats      *stats
}

// serviceNamesFilter limits the service-name watch to ordinary services:
// sidecars, gateways and other proxies are never the destination of a
// sidecar, so watching /v1/health/connect of their names would find
// nothing.
const serviceNamesFilter = `ServiceKind == ""`

// consulService is the name under which Consul servers register
// themselves; it is in every catalog and never has sidecars.
const consulService = "consul"

// watchServiceNames watches /v1/catalog/services and keeps one connect
// watch running per service name.
func (c *coordinator) watchServiceNames(ctx context.Context) {
	guard := &emptyCatalogGuard{leader: c.leader}
	var index indexWatch
	fetch := func(q *api.QueryOptions) (serviceNames, uint64, error) {
		q.Filter = serviceNamesFilter
		services, meta, err := c.env.client.Catalog().Services(q)
		if err != nil {
			return serviceNames{}, 0, fmt.Errorf("watch service names: %w", err)
		}
		names := slices.Sorted(maps.Keys(services))
		if err := guard.check(q.Context(), names); err != nil {
			return serviceNames{}, 0, fmt.Errorf("watch service names: %w", err)
		}
		return serviceNames{names: names, reset: index.reset(meta.LastIndex)}, meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "catalog/services", fetch, func(ctx context.Context, r serviceNames) bool {
		return c.send(ctx, func(ctx context.Context) { c.setServiceNames(ctx, r.names, r.reset) })
	})
}

// serviceNames is an answer of the service-name watch; reset says the
// catalog's index went backwards since the previous answer: Consul lost
// its state.
type serviceNames struct {
	names []string
	reset bool
}

// watchService watches the sidecars fronting one service, all of them with
// their health (passing=false): a sidecar needs its configuration before
// its own checks can pass.
func (c *coordinator) watchService(ctx context.Context, name string, gen uint64) {
	var index indexWatch
	fetch := func(q *api.QueryOptions) (serviceAnswer, uint64, error) {
		entries, meta, err := c.env.client.Health().Connect(name, "", false, q)
		if err != nil {
			return serviceAnswer{}, 0, fmt.Errorf("watch service %q: %w", name, err)
		}
		return serviceAnswer{result: convertConnectEntries(name, entries), reset: index.reset(meta.LastIndex)}, meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "health/connect/"+name, fetch, func(ctx context.Context, a serviceAnswer) bool {
		return c.send(ctx, func(context.Context) { c.setService(name, gen, a.result, a.reset) })
	})
}

// serviceAnswer is an answer of a service's connect watch; reset says
// the index went backwards since the previous answer: Consul lost its
// state. Every watch shares Consul's index, so whichever sees the reset
// first starts the resync hold, before its own answer applies.
type serviceAnswer struct {
	result serviceResult
	reset  bool
}

// watchServiceDefaults watches the list of service-defaults entries.
func (c *coordinator) watchServiceDefaults(ctx context.Context) {
	watchEntries(ctx, c, api.ServiceDefaults, convertServiceDefaults,
		func(s *state) *map[string]*catalog.ServiceDefaults { return &s.serviceDefaults })
}

// watchProxyDefaults watches the global proxy-defaults entry. It lists the
// kind rather than reading /v1/config/proxy-defaults/global, whose 404 when
// the entry does not exist carries no index to block on.
func (c *coordinator) watchProxyDefaults(ctx context.Context) {
	watchEntryAnswers(ctx, c, api.ProxyDefaults, func(entries []api.ConfigEntry) entryAnswer {
		return singleAnswer(convertProxyDefaults(entries),
			func(s *state) **catalog.ProxyDefaults { return &s.proxyDefaults },
			func(s *state) *bool { return &s.proxyDefaultsKnown })
	})
}

// watchMesh watches the mesh config entry, listing the kind for the
// same reason as watchProxyDefaults.
func (c *coordinator) watchMesh(ctx context.Context) {
	watchEntryAnswers(ctx, c, api.MeshConfig, func(entries []api.ConfigEntry) entryAnswer {
		return singleAnswer(convertMesh(entries),
			func(s *state) **catalog.Mesh { return &s.mesh },
			func(s *state) *bool { return &s.meshKnown })
	})
}

// watchExportedServices watches the exported-services entry: exports to
// peers are applied (the mesh gateways route them); exports to partitions
// and sameness groups are reported as not applied.
func (c *coordinator) watchExportedServices(ctx context.Context) {
	type answer struct {
		note    *catalog.EntryNote
		exports map[string][]string
	}
	fetch := func(q *api.QueryOptions) (answer, uint64, error) {
		entries, meta, err := c.env.client.ConfigEntries().List(api.ExportedServices, q)
		if err != nil {
			return answer{}, 0, fmt.Errorf("watch exported-services: %w", err)
		}
		return answer{convertExportedServices(entries), convertExports(entries)}, meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "config/exported-services", fetch, func(ctx context.Context, a answer) bool {
		return c.send(ctx, func(context.Context) {
			c.state.exportedServices, c.state.peering.exports = a.note, a.exports
		})
	})
}

// leader returns the address of the cluster's leader, empty if none.
func (c *coordinator) leader(ctx context.Context) (string, error) {
	var leader string
	q := &api.QueryOptions{Datacenter: c.env.datacenter}
	if _, err := c.env.client.Raw().Query("/v1/status/leader", &leader, q.WithContext(ctx)); err != nil {
		return "", err
	}
	return leader, nil
}

// emptyCatalogGuard rejects an answer of the service-name watch that drops
// from some services to none, unless the cluster confirms it has a leader.
// An agent that lost its view of the cluster must not empty the mesh; the
// rejected answer counts as a failed request and is retried.
type emptyCatalogGuard struct {
	hadServices bool
	leader      func(context.Context) (string, error)
}

func (g *emptyCatalogGuard) check(ctx context.Context, names []string) error {
	if slices.ContainsFunc(names, func(n string) bool { return n != consulService }) {
		g.hadServices = true
		return nil
	}
	if !g.hadServices {
		return nil
	}
	leader, err := g.leader(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("catalog lost every service and the leader check failed: %w", err)
	case leader == "":
		return errors.New("catalog lost every service and the cluster has no leader")
	}
	g.hadServices = false
	return nil
}
