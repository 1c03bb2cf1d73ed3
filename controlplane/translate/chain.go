package translate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/catalog"
)

// chain is the compiled discovery chain of one upstream service in one
// datacenter, as Consul compiles it: the routes requests take (the
// service-router's, then a catch-all; a single catch-all without router
// and for tcp) and, for each, the resolved targets it splits between.
type chain struct {
	service, dc string
	l7          bool
	routes      []chainRoute
	// targets are the distinct resolved targets of the routes, in order of
	// first use. Each has a cluster and a load assignment.
	targets []*resolution
}

// chainRoute is one route of a chain.
type chainRoute struct {
	match *catalog.RouteHTTPMatch   // nil matches every request
	dest  *catalog.RouteDestination // the router's destination; nil otherwise
	// splits has one entry, with split false, when the route is not split.
	splits []chainSplit
	split  bool
}

// chainSplit is one weighted share of a split route.
type chainSplit struct {
	weight            uint32 // in hundredths of a percent
	to                *resolution
	request, response *catalog.HeaderModifiers
}

// chainLevel says how much of the discovery chain a compilation applies.
type chainLevel int

const (
	fullChain    chainLevel = iota // routers, splitters and resolvers
	resolverOnly                   // the start service's resolver alone
	plainChain                     // every instance of the service, no entry
)

// chainCompiler compiles one chain.
type chainCompiler struct {
	t     *translator
	c     *chain
	level chainLevel
}

// compileChain compiles the chain of service in dc at a level.
func (t *translator) compileChain(service, dc string, l7 bool, level chainLevel) (*chain, error) {
	cc := &chainCompiler{t: t, c: &chain{service: service, dc: dc, l7: l7}, level: level}
	start := target{service: service, dc: dc}
	if r := t.router(service); r != nil && l7 && level == fullChain {
		if err := cc.router(r); err != nil {
			return nil, err
		}
	}
	splits, split, err := cc.next(start)
	if err != nil {
		return nil, err
	}
	cc.addRoute(chainRoute{splits: splits, split: split})
	if err := cc.checkProtocols(); err != nil {
		return nil, err
	}
	return cc.c, nil
}

func (cc *chainCompiler) router(r *catalog.ServiceRouter) error {
	if len(r.Unsupported) > 0 {
		return fmt.Errorf("service-router %q: not supported: %s", r.Name, strings.Join(r.Unsupported, ", "))
	}
	for i, rt := range r.Routes {
		field := fmt.Sprintf("service-router %q: Routes[%d]", r.Name, i)
		if err := checkRouteMatch(rt.Match); err != nil {
			return fmt.Errorf("%s.Match.HTTP.%w", field, err)
		}
		if err := checkDestination(rt.Destination); err != nil {
			return fmt.Errorf("%s.Destination.%w", field, err)
		}
		if d, m := rt.Destination, rt.Match; d != nil && d.PrefixRewrite != "" && (m == nil || m.PathExact == "" && m.PathPrefix == "") {
			return fmt.Errorf("%s.Destination.PrefixRewrite: needs a PathExact or PathPrefix match", field)
		}
		to := target{service: cc.c.service, dc: cc.c.dc}
		if d := rt.Destination; d != nil {
			to.service, to.subset = cmp.Or(d.Service, cc.c.service), d.ServiceSubset
		}
		splits, split, err := cc.next(to)
		if err != nil {
			return fmt.Errorf("%s.Destination: %w", field, err)
		}
		cc.addRoute(chainRoute{match: rt.Match, dest: rt.Destination, splits: splits, split: split})
	}
	return nil
}

// next resolves where requests for to go: through its service's splitter
// when it names no subset and has one, else straight to its resolver.
func (cc *chainCompiler) next(to target) ([]chainSplit, bool, error) {
	if to.subset == "" && cc.splitter(to.service) != nil {
		splits, err := cc.splits(to.service, 10000, nil, nil)
		return splits, true, err
	}
	if cc.level == plainChain {
		return []chainSplit{{weight: 10000, to: cc.t.plainResolution(to)}}, false, nil
	}
	r, err := cc.t.resolve(to, false)
	if err != nil {
		return nil, false, err
	}
	return []chainSplit{{weight: 10000, to: r}}, false, nil
}

// splitter is the splitter the chain applies to service, if any.
func (cc *chainCompiler) splitter(service string) *catalog.ServiceSplitter {
	if !cc.c.l7 || cc.level != fullChain {
		return nil
	}
	return cc.t.splitter(service)
}

// splits flattens the splitter of service, whose share of the traffic is
// weight, into weighted resolved targets: a split to another service with
// a splitter of its own is replaced by that splitter's splits, their
// weights multiplied and header changes merged, as Consul flattens them.
func (cc *chainCompiler) splits(service string, weight uint32, parent *catalog.Split, stack []string) ([]chainSplit, error) {
	sp := cc.splitter(service)
	if slices.Contains(stack, service) {
		return nil, fmt.Errorf("service-splitter %q: splits loop: %s -> %s", service, strings.Join(stack, " -> "), service)
	}
	if len(sp.Unsupported) > 0 {
		return nil, fmt.Errorf("service-splitter %q: not supported: %s", sp.Name, strings.Join(sp.Unsupported, ", "))
	}
	stack = append(stack, service)
	var out []chainSplit
	for i, s := range sp.Splits {
		field := fmt.Sprintf("service-splitter %q: Splits[%d]", sp.Name, i)
		if s.Weight < 0 || s.Weight > 100 {
			return nil, fmt.Errorf("%s.Weight: %v is not a percentage", field, s.Weight)
		}
		if err := checkHeaderModifiers(s.RequestHeaders, s.ResponseHeaders); err != nil {
			return nil, fmt.Errorf("%s.%w", field, err)
		}
		merged := mergeSplit(parent, s)
		w := uint32(math.Round(math.Round(float64(s.Weight)*100) * float64(weight) / 10000))
		to := target{service: cmp.Or(s.Service, service), subset: s.ServiceSubset, dc: cc.c.dc}
		if to.service != service && to.subset == "" && cc.splitter(to.service) != nil {
			inner, err := cc.splits(to.service, w, &merged, stack)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		if w == 0 {
			continue
		}
		r, err := cc.t.resolve(to, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		out = append(out, chainSplit{weight: w, to: r, request: merged.RequestHeaders, response: merged.ResponseHeaders})
	}
	if len(out) == 0 && len(stack) == 1 {
		return nil, fmt.Errorf("service-splitter %q: Splits: no split has a weight", sp.Name)
	}
	return out, nil
}

func (cc *chainCompiler) addRoute(r chainRoute) {
	for _, s := range r.splits {
		if !slices.Contains(cc.c.targets, s.to) {
			cc.c.targets = append(cc.c.targets, s.to)
		}
	}
	cc.c.routes = append(cc.c.routes, r)
}

// checkProtocols requires every service the chain reaches, failover
// targets included, to have the protocol of its start service, as Consul
// does: a cluster speaks one protocol to all its instances.
func (cc *chainCompiler) checkProtocols() error {
	want := cc.t.protocolOf(cc.c.service)
	for _, r := range cc.c.targets {
		for _, svc := range r.services() {
			if got := cc.t.protocolOf(svc.service); got != want {
				return fmt.Errorf("service %q has protocol %q, but the chain of %q, which reaches it, has %q", svc.service, got, cc.c.service, want)
			}
		}
		for _, f := range r.failover {
			if f.target.peer == "" {
				continue
			}
			imp := cc.t.imported(f.target.peer, f.target.service)
			if imp != nil && imp.Protocol != "" && imp.Protocol != want {
				return fmt.Errorf("service %q of peer %q has protocol %q there, but the chain of %q, which fails over to it, has %q", f.target.service, f.target.peer, imp.Protocol, cc.c.service, want)
			}
		}
	}
	return nil
}

// mergeSplit is an inner split as reached through parent: request header
// changes of the inner split win over its parent's, response header
// changes of the parent win (they run after the inner ones).
func mergeSplit(parent *catalog.Split, s catalog.Split) catalog.Split {
	if parent == nil {
		return s
	}
	s.RequestHeaders = mergeHeaderModifiers(parent.RequestHeaders, s.RequestHeaders)
	s.ResponseHeaders = mergeHeaderModifiers(s.ResponseHeaders, parent.ResponseHeaders)
	return s
}

func mergeHeaderModifiers(base, over *catalog.HeaderModifiers) *catalog.HeaderModifiers {
	switch {
	case base == nil:
		return over
	case over == nil:
		return base
	}
	out := &catalog.HeaderModifiers{Add: mergeMaps(base.Add, over.Add), Set: mergeMaps(base.Set, over.Set)}
	out.Remove = slices.Clone(base.Remove)
	for _, h := range over.Remove {
		if !slices.Contains(out.Remove, h) {
			out.Remove = append(out.Remove, h)
		}
	}
	return out
}

func mergeMaps(a, b map[string]string) map[string]string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
