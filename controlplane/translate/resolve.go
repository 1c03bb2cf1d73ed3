package translate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// target is a set of instances: those of a service, narrowed to a
// service-resolver subset when subset is set, in a datacenter. Each target
// has its own cluster and load assignment.
type target struct {
	service, subset, dc string
	// peer is the cluster peer the service is imported from (a failover
	// target's Peer); dc and subset are then empty.
	peer string
}

func (t target) clusterName() string {
	if t.peer != "" {
		return PeerClusterName(t.service, t.peer)
	}
	return SubsetClusterName(t.subset, t.service, t.dc)
}

// rewrite applies a redirect or failover target to t, as Consul does:
// naming another service drops the subset unless a subset is named too.
func (t target) rewrite(to catalog.ResolverTarget) target {
	out := t
	if to.Service != "" && to.Service != t.service {
		out.service, out.subset = to.Service, ""
	}
	if to.ServiceSubset != "" {
		out.subset = to.ServiceSubset
	}
	if to.Datacenter != "" {
		out.dc = to.Datacenter
	}
	if to.Peer != "" {
		out.dc, out.peer = "", to.Peer
	}
	return out
}

// resolution is a target after its service's service-resolver is applied:
// redirects followed, default subset chosen, subset filter compiled, and
// failover targets resolved in turn (without failover of their own).
type resolution struct {
	target   target
	subset   catalog.ResolverSubset
	filter   *subsetFilter // nil selects every instance
	lb       *catalog.LoadBalancer
	failover []*resolution
	own      *resolution // r without failover, once asked for (withoutFailover)

	// connectTimeout and requestTimeout are the resolver's; zero is unset.
	connectTimeout time.Duration
	requestTimeout time.Duration
}

type resolveKey struct {
	target      target
	forFailover bool
}

type resolveResult struct {
	res    *resolution
	err    error
	inputs []input // the parts of the snapshot the result was built from
}

// resolve resolves t once per Translate. forFailover resolves a failover
// target: redirects and default subsets apply, failover does not.
func (t *translator) resolve(tg target, forFailover bool) (*resolution, error) {
	key := resolveKey{tg, forFailover}
	if r, ok := t.resolutions[key]; ok {
		t.replay(r.inputs)
		return r.res, r.err
	}
	mark := len(t.inputs)
	res, err := t.resolveUncached(tg, forFailover)
	t.resolutions[key] = resolveResult{res, err, t.inputsSince(mark)}
	return res, err
}

func (t *translator) resolveUncached(tg target, forFailover bool) (*resolution, error) {
	if tg.peer != "" {
		// The peer resolves its own service (its resolver is not
		// replicated here); this side picks its mesh gateways.
		if tg.subset != "" {
			return nil, fmt.Errorf("peer %q: service %q: a subset of a peer's service (%q) cannot be resolved here", tg.peer, tg.service, tg.subset)
		}
		return &resolution{target: tg}, nil
	}
	seen := map[target]bool{}
	var path []string
	for {
		path = append(path, tg.clusterName())
		if seen[tg] {
			return nil, fmt.Errorf("service-resolver redirects loop: %s", strings.Join(path, " -> "))
		}
		seen[tg] = true
		r := t.resolver(tg.service)
		if r == nil {
			return t.resolution(tg, nil, forFailover)
		}
		if len(r.Unsupported) > 0 {
			return nil, fmt.Errorf("service-resolver %q: not supported: %s", r.Name, strings.Join(r.Unsupported, ", "))
		}
		if r.Redirect != nil {
			if next := tg.rewrite(*r.Redirect); next != tg {
				tg = next
				continue
			}
		}
		if tg.subset == "" && r.DefaultSubset != "" {
			tg.subset = r.DefaultSubset
			continue
		}
		return t.resolution(tg, r, forFailover)
	}
}

// resolution applies resolver r (nil when the service has none) to tg,
// which is final: no redirect or default subset applies any more.
func (t *translator) resolution(tg target, r *catalog.ServiceResolver, forFailover bool) (*resolution, error) {
	res := &resolution{target: tg}
	if tg.subset != "" {
		if r == nil {
			return nil, fmt.Errorf("service %q has no service-resolver, so no subset %q", tg.service, tg.subset)
		}
		def, ok := r.Subsets[tg.subset]
		if !ok {
			return nil, fmt.Errorf("service-resolver %q: Subsets: no subset named %q", r.Name, tg.subset)
		}
		f, err := t.filter(def.Filter)
		if err != nil {
			return nil, fmt.Errorf("service-resolver %q: Subsets[%q].Filter: %w", r.Name, tg.subset, err)
		}
		res.subset, res.filter = def, f
	}
	if r == nil {
		return res, nil
	}
	if err := checkLoadBalancer(r.LoadBalancer); err != nil {
		return nil, fmt.Errorf("service-resolver %q: LoadBalancer: %w", r.Name, err)
	}
	if r.ConnectTimeout < 0 {
		return nil, fmt.Errorf("service-resolver %q: ConnectTimeout: negative (%v)", r.Name, r.ConnectTimeout)
	}
	res.lb, res.connectTimeout, res.requestTimeout = r.LoadBalancer, r.ConnectTimeout, r.RequestTimeout
	if forFailover {
		return res, nil
	}
	key := tg.subset
	fo, ok := r.Failover[key]
	if !ok {
		key = catalog.Wildcard
		fo = r.Failover[key]
	}
	for i, ft := range fo.Targets {
		next := tg.rewrite(ft)
		if next == tg {
			continue // no failover to itself
		}
		fr, err := t.resolve(next, true)
		if err != nil {
			return nil, fmt.Errorf("service-resolver %q: Failover[%q].Targets[%d]: %w", r.Name, key, i, err)
		}
		res.failover = append(res.failover, fr)
	}
	return res, nil
}

// peerFailover reports whether a failover target of r is a peer's
// service: r's cluster is then an aggregate of one cluster per target
// (aggregate.go), as each needs its own TLS.
func (r *resolution) peerFailover() bool {
	return slices.ContainsFunc(r.failover, func(f *resolution) bool { return f.target.peer != "" })
}

// services lists the distinct local services whose instances a
// resolution's load assignment holds, primary first, with their
// datacenters; a peer's services are not among them.
func (r *resolution) services() []target {
	out := []target{{service: r.target.service, dc: r.target.dc}}
	for _, f := range r.failover {
		if f.target.peer != "" {
			continue
		}
		t := target{service: f.target.service, dc: f.target.dc}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
