package discovery

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// convertServiceResolvers converts the list of service-resolver entries.
func convertServiceResolvers(entries []api.ConfigEntry) map[string]*catalog.ServiceResolver {
	out := make(map[string]*catalog.ServiceResolver, len(entries))
	for _, e := range entries {
		if r, ok := e.(*api.ServiceResolverConfigEntry); ok && r != nil {
			out[r.Name] = convertResolver(r)
		}
	}
	return out
}

func convertResolver(r *api.ServiceResolverConfigEntry) *catalog.ServiceResolver {
	var u unsupported
	out := &catalog.ServiceResolver{
		Name:           r.Name,
		DefaultSubset:  r.DefaultSubset,
		ConnectTimeout: r.ConnectTimeout,
		RequestTimeout: r.RequestTimeout,
		LoadBalancer:   convertLoadBalancer(r.LoadBalancer),
	}
	if len(r.Subsets) > 0 {
		out.Subsets = make(map[string]catalog.ResolverSubset, len(r.Subsets))
		for name, s := range r.Subsets {
			out.Subsets[name] = catalog.ResolverSubset{Filter: s.Filter, OnlyPassing: s.OnlyPassing}
		}
	}
	if rd := r.Redirect; rd != nil {
		u.tenancy("Redirect", rd.Namespace, rd.Partition, rd.Peer)
		u.set("Redirect.SamenessGroup", rd.SamenessGroup)
		out.Redirect = &catalog.ResolverTarget{Service: rd.Service, ServiceSubset: rd.ServiceSubset, Datacenter: rd.Datacenter}
	}
	if len(r.Failover) > 0 {
		out.Failover = make(map[string]catalog.ResolverFailover, len(r.Failover))
		for _, key := range slices.Sorted(maps.Keys(r.Failover)) {
			out.Failover[key] = convertFailover(fmt.Sprintf("Failover[%q]", key), r.Failover[key], &u)
		}
	}
	if p := r.PrioritizeByLocality; p != nil && p.Mode != "" && p.Mode != "none" {
		u.set("PrioritizeByLocality.Mode", p.Mode)
	}
	out.Unsupported, out.ModifyIndex = u.versioned(r.ModifyIndex)
	return out
}

// convertFailover expresses Consul's three failover forms as targets:
// Datacenters (the service, or Service/ServiceSubset, in each), Targets,
// or a single Service/ServiceSubset.
func convertFailover(field string, f api.ServiceResolverFailover, u *unsupported) catalog.ResolverFailover {
	u.tenancy(field, f.Namespace, "", "")
	u.set(field+".SamenessGroup", f.SamenessGroup)
	if p := f.Policy; p != nil && (p.Mode != "" && p.Mode != "sequential" || len(p.Regions) > 0) {
		u.set(field+".Policy.Mode", p.Mode)
	}
	var out catalog.ResolverFailover
	switch {
	case len(f.Datacenters) > 0:
		for _, dc := range f.Datacenters {
			out.Targets = append(out.Targets, catalog.ResolverTarget{Service: f.Service, ServiceSubset: f.ServiceSubset, Datacenter: dc})
		}
	case len(f.Targets) > 0:
		for i, t := range f.Targets {
			// A peer is a failover target (translate/resolve.go); a
			// redirect to one is not supported.
			u.tenancy(fmt.Sprintf("%s.Targets[%d]", field, i), t.Namespace, t.Partition, "")
			out.Targets = append(out.Targets, catalog.ResolverTarget{Service: t.Service, ServiceSubset: t.ServiceSubset, Datacenter: t.Datacenter, Peer: t.Peer})
		}
	case f.Service != "" || f.ServiceSubset != "":
		out.Targets = []catalog.ResolverTarget{{Service: f.Service, ServiceSubset: f.ServiceSubset}}
	}
	return out
}

func convertLoadBalancer(lb *api.LoadBalancer) *catalog.LoadBalancer {
	if lb == nil {
		return nil
	}
	out := &catalog.LoadBalancer{Policy: lb.Policy}
	if c := lb.LeastRequestConfig; c != nil {
		out.ChoiceCount = c.ChoiceCount
	}
	if c := lb.RingHashConfig; c != nil {
		out.MinRingSize, out.MaxRingSize = c.MinimumRingSize, c.MaximumRingSize
	}
	for _, hp := range lb.HashPolicies {
		p := catalog.HashPolicy{Field: hp.Field, FieldValue: hp.FieldValue, SourceIP: hp.SourceIP, Terminal: hp.Terminal}
		if c := hp.CookieConfig; c != nil {
			p.Cookie = &catalog.CookieConfig{Session: c.Session, TTL: c.TTL, Path: c.Path}
		}
		out.HashPolicies = append(out.HashPolicies, p)
	}
	return out
}

// unsupported collects the settings of an entry Weft cannot apply.
type unsupported struct{ list []string }

// set notes field when value is set.
func (u *unsupported) set(field, value string) {
	if value != "" {
		u.list = append(u.list, fmt.Sprintf("%s = %q", field, value))
	}
}

// versioned returns the notes with the entry's ModifyIndex, or nil and 0
// when there are none (catalog.ServiceDefaults.ModifyIndex).
func (u *unsupported) versioned(modifyIndex uint64) ([]string, uint64) {
	if len(u.list) == 0 {
		return nil, 0
	}
	return u.list, modifyIndex
}

// tenancy notes a namespace or partition other than "default", and any
// peer: this mesh has only the default namespace and partition.
func (u *unsupported) tenancy(field, namespace, partition, peer string) {
	if namespace != "" && namespace != "default" {
		u.set(field+".Namespace", namespace)
	}
	if partition != "" && partition != "default" {
		u.set(field+".Partition", partition)
	}
	u.set(field+".Peer", peer)
}
