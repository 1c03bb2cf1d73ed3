package discovery

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// watchIntentions watches every service-intentions config entry.
func (c *coordinator) watchIntentions(ctx context.Context) {
	watchEntryAnswers(ctx, c, api.ServiceIntentions, func(entries []api.ConfigEntry) entryAnswer {
		return convertIntentions(entries).answer()
	})
}

// answer applies the intentions to a state; during a resync, the entries
// of destinations Consul no longer lists are kept (entryhold.go).
func (ins convertedIntentions) answer() entryAnswer {
	store := func(s *state) {
		s.intentions, s.intentionsNotApplied, s.intentionsKnown = ins.byDestination, ins.notApplied, true
	}
	return entryAnswer{store: store, held: func(s, before *state) {
		store(s)
		s.intentions = unionMap(ins.byDestination, before.intentions)
		s.intentionsNotApplied = unionMap(ins.notApplied, before.intentionsNotApplied)
	}}
}

// convertedIntentions are the service-intentions entries as a snapshot
// holds them (catalog.Snapshot.Intentions and IntentionsNotApplied).
type convertedIntentions struct {
	byDestination map[string][]catalog.Intention
	notApplied    map[string]*catalog.EntryNote
}

// convertIntentions returns the sources of every entry by destination,
// highest precedence first, and what each entry sets that is not applied.
// Sources in other partitions, peers or sameness groups cannot hold an
// identity of this mesh's trust domain: they are left out. An allow that
// needs a JWT is enforced as a deny (convertSource).
func convertIntentions(entries []api.ConfigEntry) convertedIntentions {
	out := convertedIntentions{byDestination: map[string][]catalog.Intention{}, notApplied: map[string]*catalog.EntryNote{}}
	for _, e := range entries {
		entry, ok := e.(*api.ServiceIntentionsConfigEntry)
		if !ok {
			continue
		}
		var u unsupported
		for i, src := range entry.Sources {
			if src == nil {
				continue
			}
			field := fmt.Sprintf("Sources[%d]", i)
			if src.Peer != "" || src.SamenessGroup != "" || (src.Partition != "" && src.Partition != "default") {
				u.list = append(u.list, fmt.Sprintf("%s (%q) is outside this mesh's trust domain and not enforced: %s",
					field, src.Name, outside(src)))
				continue
			}
			in, jwt := convertSource(entry.Name, src, entry.JWT != nil)
			if jwt {
				u.list = append(u.list, fmt.Sprintf("%s (%q) needs a JWT, which weft-proxy cannot verify: its allows are enforced as denies", field, src.Name))
			}
			out.byDestination[entry.Name] = append(out.byDestination[entry.Name], in)
		}
		if len(u.list) > 0 {
			out.notApplied[entry.Name] = &catalog.EntryNote{Kind: catalog.KindServiceIntentions, Name: entry.Name,
				ModifyIndex: entry.ModifyIndex, Fields: u.list}
		}
	}
	for _, ins := range out.byDestination {
		sort.SliceStable(ins, func(i, j int) bool { return ins[i].Precedence > ins[j].Precedence })
	}
	return out
}

// outside names what puts an intention source outside this mesh.
func outside(src *api.SourceIntention) string {
	var u unsupported
	u.set("Peer", src.Peer)
	u.set("SamenessGroup", src.SamenessGroup)
	if src.Partition != "default" {
		u.set("Partition", src.Partition)
	}
	return strings.Join(u.list, ", ")
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
