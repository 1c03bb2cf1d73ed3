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
	watchEntries(ctx, c, api.ServiceResolver, convertServiceResolvers,
		func(s *state) *map[string]*catalog.ServiceResolver { return &s.chain.resolvers })
}

func (c *coordinator) watchServiceSplitters(ctx context.Context) {
	watchEntries(ctx, c, api.ServiceSplitter, convertServiceSplitters,
		func(s *state) *map[string]*catalog.ServiceSplitter { return &s.chain.splitters })
}

func (c *coordinator) watchServiceRouters(ctx context.Context) {
	watchEntries(ctx, c, api.ServiceRouter, convertServiceRouters,
		func(s *state) *map[string]*catalog.ServiceRouter { return &s.chain.routers })
}

// watchEntries watches the list of config entries of one kind, converts
// each answer with convert (which must return a non-nil map) and stores it
// in the state field field returns, on the coordinator goroutine.
func watchEntries[T any](ctx context.Context, c *coordinator, kind string,
	convert func([]api.ConfigEntry) map[string]T, field func(*state) *map[string]T) {
	watchEntryAnswers(ctx, c, kind, func(entries []api.ConfigEntry) entryAnswer {
		return mapAnswer(convert(entries), field)
	})
}

// watchEntryAnswers watches the list of config entries of one kind and
// applies each answer as answer makes it (entryhold.go).
func watchEntryAnswers(ctx context.Context, c *coordinator, kind string, answer func([]api.ConfigEntry) entryAnswer) {
	var index indexWatch
	type result struct {
		answer entryAnswer
		reset  bool
	}
	fetch := func(q *api.QueryOptions) (result, uint64, error) {
		entries, meta, err := c.env.client.ConfigEntries().List(kind, q)
		if err != nil {
			return result{}, 0, fmt.Errorf("watch %s: %w", kind, err)
		}
		return result{answer(entries), index.reset(meta.LastIndex)}, meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "config/"+kind, fetch, func(ctx context.Context, r result) bool {
		return c.send(ctx, func(context.Context) { c.setEntries(kind, r.answer, r.reset) })
	})
}
