package translate

import (
	"github.com/hashicorp/go-bexpr"

	"github.com/weft-mesh/weft/catalog"
)

// subsetFilter is a compiled service-resolver subset filter: a Consul
// filter expression (github.com/hashicorp/go-bexpr, the library Consul
// uses) evaluated against each sidecar instance, e.g.
// `Service.Meta.version == v2`, `"canary" in Service.Tags`, combined with
// and, or, not.
type subsetFilter struct {
	eval *bexpr.Evaluator
}

// filterInstance is what a filter sees of an instance: the fields of
// Consul's /v1/health/connect entry that the catalog keeps, under Consul's
// names. A selector naming anything else is an error.
type filterInstance struct {
	Service filterService
	Node    filterNode
}

type filterService struct {
	ID      string
	Address string
	Port    int
	Tags    []string
	Meta    map[string]string
}

type filterNode struct {
	Node string
}

type filterResult struct {
	f   *subsetFilter
	err error
}

// filter compiles expr once per Translate; "" selects every instance
// (nil filter).
func (t *translator) filter(expr string) (*subsetFilter, error) {
	if expr == "" {
		return nil, nil
	}
	if r, ok := t.filters[expr]; ok {
		return r.f, r.err
	}
	f, err := compileFilter(expr)
	t.filters[expr] = filterResult{f, err}
	return f, err
}

// compileFilter parses expr and checks its selectors by evaluating it once
// against an empty instance: a missing map key (Service.Meta.x) is fine,
// an unknown field is not.
func compileFilter(expr string) (*subsetFilter, error) {
	eval, err := bexpr.CreateEvaluator(expr)
	if err != nil {
		return nil, err
	}
	if _, err := eval.Evaluate(filterInstance{}); err != nil {
		return nil, err
	}
	return &subsetFilter{eval: eval}, nil
}

// match reports whether the instance e is in the subset. An evaluation
// error, which compileFilter rules out, counts as no match.
func (f *subsetFilter) match(e catalog.Endpoint) bool {
	if f == nil {
		return true
	}
	ok, err := f.eval.Evaluate(filterInstance{
		Service: filterService{ID: e.ProxyID, Address: e.Address, Port: e.Port, Tags: e.Tags, Meta: e.Meta},
		Node:    filterNode{Node: e.Node},
	})
	return err == nil && ok
}

// endpointsOf returns the instances of a resolution's own target (not its
// failover). Only the local datacenter's instances are known. It is read
// for load assignments only (loadEndpoints).
func (t *translator) endpointsOf(r *resolution) []catalog.Endpoint {
	if r.target.dc != t.snap.Datacenter {
		return nil
	}
	all := t.loadEndpoints(r.target.service)
	if r.filter == nil {
		return all
	}
	var out []catalog.Endpoint
	for _, e := range all {
		if r.filter.match(e) {
			out = append(out, e)
		}
	}
	return out
}
