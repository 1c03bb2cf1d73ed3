package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/xds"
)

// Compile turns an xDS state into a Runtime. It reports every bad resource,
// each error naming the resource, joined with errors.Join.
//
// Compile is pure: it reads s, never modifies it, and has no side effects.
// The one thing it reads besides s are the files an UpstreamTlsContext
// without a mesh leaf may name (trusted_ca, tls_certificates): the roots
// of a server outside the mesh and the certificate presented to it.
func Compile(s xds.State) (*Runtime, error) { return Recompile(nil, s) }

// Recompile compiles s as Compile does, taking from prev, the Runtime
// compiled before (nil for none), every compiled resource whose inputs are
// the very messages it was compiled from (the xDS client keeps the message
// of a resource that did not change): a route table whose
// RouteConfiguration is the same, a cluster whose Cluster and load
// assignment are, a listener whose Listener and the route tables and
// ORIGINAL_DST clusters it refers to are, and a trust bundle whose Secret
// is. Such resources are the same pointers in the result as in prev, so
// that whoever installs the result can tell what changed by pointer. The
// checks across resources (aggregate children, original destination,
// addresses) run on the whole result every time.
//
// The result is equal to Compile(s). Recompile is pure as Compile is; it
// reads prev and never modifies it, nor what prev points to.
func Recompile(prev *Runtime, s xds.State) (*Runtime, error) {
	var errs []error
	was, next := prev.sourcesOrNone(), newSources(s)
	tables := compileAll(s.Routes, "route configuration", memoized(was.routes, next.routes, compileRouteConfig), &errs)
	loads := compileAll(s.Endpoints, "cluster load assignment", memoized(was.loads, next.loads, compileLoadAssignment), &errs)
	clusters := compileAll(s.Clusters, "cluster", func(c *clusterv3.Cluster) (*Cluster, error) {
		return next.cluster(was, c, s.Endpoints, loads)
	}, &errs)
	errs = append(errs, checkAggregates(clusters, s.Clusters)...)
	listeners := compileAll(s.Listeners, "listener", func(l *listenerv3.Listener) (*Listener, error) {
		return next.listener(was, l, tables, clusters)
	}, &errs)
	secrets := compileAll(s.Secrets, "secret", memoized(was.secrets, next.secrets, compileSecret), &errs)
	bundles, certs := splitSecrets(secrets)
	for _, name := range slices.Sorted(maps.Keys(listeners)) {
		if err := checkOriginalDst(listeners[name], clusters); err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", name, err))
		}
	}
	rt := &Runtime{Clusters: clusters, Secrets: bundles, Certificates: certs, sources: next}
	for _, name := range slices.Sorted(maps.Keys(listeners)) {
		rt.Listeners = append(rt.Listeners, listeners[name])
	}
	if err := checkAddresses(rt.Listeners); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkSecretKinds(rt)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rt.Subscriptions = subscriptionsFrom(prev, rt)
	rt.UsesLeaf, rt.LinkedLeaves = leavesPresented(rt)
	rt.IngressLeaf = ingressLeafPresented(rt)
	return rt, nil
}

// ingressLeafPresented is the ingress leaf the listeners present, with
// the union of their DNS names; nil when none does.
func ingressLeafPresented(rt *Runtime) *IngressLeaf {
	var leaf *IngressLeaf
	for _, l := range rt.Listeners {
		if l.IngressDNSNames == nil {
			continue
		}
		if leaf == nil {
			leaf = &IngressLeaf{DNSNames: []string{}}
		}
		leaf.DNSNames = append(leaf.DNSNames, l.IngressDNSNames...)
	}
	if leaf != nil {
		slices.Sort(leaf.DNSNames)
		leaf.DNSNames = slices.Compact(leaf.DNSNames)
	}
	return leaf
}

// leavesPresented reports whether a TLS context of a listener, a filter
// chain or a cluster presents weft-leaf, and lists the services of the
// weft-leaf/<service> they present. An External cluster presents none,
// nor does a listener presenting certificates over SDS.
func leavesPresented(rt *Runtime) (own bool, linked []string) {
	note := func(leaf string) {
		if leaf == "" {
			own = true
		} else {
			linked = append(linked, leaf)
		}
	}
	for _, l := range allChains(rt.Listeners) {
		if l.TLS != nil && len(l.TLS.Certificates) == 0 {
			note(l.TLS.Leaf)
		}
	}
	for _, c := range rt.Clusters {
		if c.TLS != nil && !c.TLS.External {
			note(c.TLS.Leaf)
		}
	}
	slices.Sort(linked)
	return own, slices.Compact(linked)
}

// compileAll compiles every resource of one type, collecting errors
// prefixed with the resource's kind and name, in name order.
func compileAll[M proto.Message, T any](r xds.Resources, kind string, compile func(M) (T, error), errs *[]error) map[string]T {
	out := make(map[string]T, len(r.Items))
	type failure struct {
		name string
		err  error
	}
	var failed []failure
	for name, item := range r.Items {
		m, ok := item.(M)
		if !ok {
			failed = append(failed, failure{name, fmt.Errorf("%s %q: unexpected type %T", kind, name, item)})
			continue
		}
		v, err := compile(m)
		if err != nil {
			failed = append(failed, failure{name, fmt.Errorf("%s %q: %w", kind, name, err)})
			continue
		}
		out[name] = v
	}
	slices.SortFunc(failed, func(a, b failure) int { return strings.Compare(a.name, b.name) })
	for _, f := range failed {
		*errs = append(*errs, f.err)
	}
	return out
}

// checkAddresses rejects two listeners on one address. Port 0 means a
// fresh ephemeral port for each listener, so it never clashes.
func checkAddresses(listeners []*Listener) error {
	owner := make(map[string]string, len(listeners))
	for _, l := range listeners {
		if strings.HasSuffix(l.Address, ":0") {
			continue
		}
		if other, dup := owner[l.Address]; dup {
			return fmt.Errorf("listener %q: address %s is also used by listener %q", l.Name, l.Address, other)
		}
		owner[l.Address] = l.Name
	}
	return nil
}

// subscriptionsFrom returns prev's subscriptions when rt has the same
// listeners as prev and clusters of the same names that name the same
// load assignments and trust bundles, as after an endpoint change; else
// it lists them anew.
func subscriptionsFrom(prev, rt *Runtime) xds.Subscriptions {
	if prev == nil || !slices.Equal(prev.Listeners, rt.Listeners) || len(prev.Clusters) != len(rt.Clusters) {
		return subscriptions(rt)
	}
	for name, c := range rt.Clusters {
		p := prev.Clusters[name]
		if p == nil || p != c && (p.EDSName != c.EDSName || trustBundleOf(p) != trustBundleOf(c)) {
			return subscriptions(rt)
		}
	}
	return prev.Subscriptions
}

func trustBundleOf(c *Cluster) string {
	if c.TLS == nil {
		return ""
	}
	return c.TLS.TrustBundle
}

// subscriptions lists the RDS names of listeners, the EDS names of
// clusters and the SDS names of both: trust bundles, and the certificates
// listeners present to clients outside the mesh.
func subscriptions(rt *Runtime) xds.Subscriptions {
	var s xds.Subscriptions
	for _, l := range allChains(rt.Listeners) {
		if l.HTTP != nil && l.HTTP.RouteConfigName != "" {
			s.Routes = append(s.Routes, l.HTTP.RouteConfigName)
		}
		switch {
		case l.TLS == nil:
		case len(l.TLS.Certificates) > 0:
			for _, name := range l.TLS.Certificates {
				if name != IngressLeafSecret { // the proxy's own, never over xDS
					s.Secrets = append(s.Secrets, name)
				}
			}
		case l.TLS.Inline == nil:
			s.Secrets = append(s.Secrets, l.TLS.TrustBundle)
		}
	}
	for _, c := range rt.Clusters {
		if c.EDSName != "" {
			s.Endpoints = append(s.Endpoints, c.EDSName)
		}
		if c.TLS != nil && c.TLS.Inline == nil {
			s.Secrets = append(s.Secrets, c.TLS.TrustBundle)
		}
	}
	for _, names := range []*[]string{&s.Routes, &s.Endpoints, &s.Secrets} {
		slices.Sort(*names)
		*names = slices.Compact(*names)
	}
	return s
}
