package discovery

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// chainEntries are the discovery-chain config entries of a state, by kind
// and service name. Each map is nil until its watch has answered.
type chainEntries struct {
	resolvers map[string]*catalog.ServiceResolver
	splitters map[string]*catalog.ServiceSplitter
	routers   map[string]*catalog.ServiceRouter
}

// known lists, per kind, whether its watch has answered.
func (e *chainEntries) known() []bool {
	return []bool{e.resolvers != nil, e.splitters != nil, e.routers != nil}
}

// watchServiceResolvers, watchServiceSplitters and watchServiceRouters
// each hold one blocking query on the list of their kind's entries.
func (c *coordinator) watchServiceResolvers(ctx context.Context) {
	watchEntries(ctx, c, api.ServiceResolver, convertServiceResolvers, func(s *state, v map[string]*catalog.ServiceResolver) {
		s.chain.resolvers = v
	})
}

func (c *coordinator) watchServiceSplitters(ctx context.Context) {
	watchEntries(ctx, c, api.ServiceSplitter, convertServiceSplitters, func(s *state, v map[string]*catalog.ServiceSplitter) {
		s.chain.splitters = v
	})
}

func (c *coordinator) watchServiceRouters(ctx context.Context) {
	watchEntries(ctx, c, api.ServiceRouter, convertServiceRouters, func(s *state, v map[string]*catalog.ServiceRouter) {
		s.chain.routers = v
	})
}

// watchEntries watches the list of config entries of one kind, converts
// each answer with convert (which must return a non-nil map) and stores it
// in the state with store, on the coordinator goroutine.
func watchEntries[T any](ctx context.Context, c *coordinator, kind string,
	convert func([]api.ConfigEntry) map[string]T, store func(*state, map[string]T)) {
	fetch := func(q *api.QueryOptions) (map[string]T, uint64, error) {
		entries, meta, err := c.env.client.ConfigEntries().List(kind, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch %s: %w", kind, err)
		}
		return convert(entries), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "config/"+kind, fetch, func(ctx context.Context, v map[string]T) bool {
		return c.send(ctx, func(context.Context) { store(c.state, v) })
	})
}
