package discovery

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// watchIntentions watches every service-intentions config entry.
func (c *coordinator) watchIntentions(ctx context.Context) {
	fetch := func(q *api.QueryOptions) (map[string][]catalog.Intention, uint64, error) {
		entries, meta, err := c.env.client.ConfigEntries().List(api.ServiceIntentions, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch service-intentions: %w", err)
		}
		return convertIntentions(entries, c.env.logger), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "config/service-intentions", fetch, func(ctx context.Context, ins map[string][]catalog.Intention) bool {
		return c.send(ctx, func(context.Context) {
			c.state.intentions, c.state.intentionsKnown = ins, true
		})
	})
}

// convertIntentions returns the sources of every entry by destination,
// highest precedence first. Sources in other partitions, peers or sameness
// groups cannot hold an identity of this mesh's trust domain; they are
// left out, and logged.
func convertIntentions(entries []api.ConfigEntry, logger interface{ Warn(string, ...any) }) map[string][]catalog.Intention {
	out := make(map[string][]catalog.Intention)
	for _, e := range entries {
		entry, ok := e.(*api.ServiceIntentionsConfigEntry)
		if !ok {
			continue
		}
		for _, src := range entry.Sources {
			if src == nil {
				continue
			}
			if src.Peer != "" || src.SamenessGroup != "" || (src.Partition != "" && src.Partition != "default") {
				logger.Warn("intention source outside this mesh's trust domain is not enforced",
					"destination", entry.Name, "source", src.Name, "peer", src.Peer, "sameness_group", src.SamenessGroup, "partition", src.Partition)
				continue
			}
			in, jwt := convertSource(entry.Name, src, entry.JWT != nil)
			if jwt {
				logger.Warn("intention requires a JWT, which weft-proxy cannot verify: its allows are enforced as denies",
					"destination", entry.Name, "source", src.Name)
			}
			out[entry.Name] = append(out[entry.Name], in)
		}
	}
	for _, ins := range out {
		sort.SliceStable(ins, func(i, j int) bool { return ins[i].Precedence > ins[j].Precedence })
	}
	return out
}

// convertSource converts one source of dest's intentions. Consul can make
// an allow conditional on a JWT (the entry's, entryJWT, or a permission's); Weft
// cannot verify JWTs, and dropping the condition would allow more than the
// intention does, so such an allow becomes a deny (jwt reports it). A deny
// with a JWT condition stays a plain deny, which denies more, never less.
func convertSource(dest string, src *api.SourceIntention, entryJWT bool) (in catalog.Intention, jwt bool) {
	in = catalog.Intention{Source: src.Name, Destination: dest, Action: string(src.Action), Precedence: src.Precedence}
	if entryJWT && in.Action == catalog.ActionAllow {
		in.Action, jwt = catalog.ActionDeny, true
	}
	for _, p := range src.Permissions {
		if p == nil {
			continue
		}
		perm := catalog.IntentionPermission{Action: string(p.Action)}
		if (entryJWT || p.JWT != nil) && perm.Action == catalog.ActionAllow {
			perm.Action, jwt = catalog.ActionDeny, true
		}
		if h := p.HTTP; h != nil {
			m := &catalog.IntentionHTTPMatch{PathExact: h.PathExact, PathPrefix: h.PathPrefix, PathRegex: h.PathRegex, Methods: h.Methods}
			for _, hh := range h.Header {
				m.Headers = append(m.Headers, catalog.IntentionHTTPHeader{Name: hh.Name, Present: hh.Present, Exact: hh.Exact,
					Prefix: hh.Prefix, Suffix: hh.Suffix, Contains: hh.Contains, Regex: hh.Regex, Invert: hh.Invert, IgnoreCase: hh.IgnoreCase})
			}
			perm.HTTP = m
		}
		in.Permissions = append(in.Permissions, perm)
	}
	return in, jwt
}

// aclDefaultPolicy reads Consul's ACL default policy from the agent: its
// configured policy with ACLs on, "allow" with ACLs off (Consul's behaviour),
// "" when the agent does not say (e.g. the token may not read it).
func aclDefaultPolicy(ctx context.Context, client *api.Client) string {
	var self struct {
		DebugConfig struct {
			ACLsEnabled         bool
			ACLResolverSettings struct{ ACLDefaultPolicy string }
		}
	}
	if _, err := client.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return ""
	}
	if !self.DebugConfig.ACLsEnabled {
		return catalog.ActionAllow
	}
	return self.DebugConfig.ACLResolverSettings.ACLDefaultPolicy
}
