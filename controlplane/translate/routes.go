package translate

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/catalog"
)

// Retry back-off between attempts: jittered exponential from the base,
// capped at the max (Envoy's defaults, made explicit).
const (
	retryBaseInterval = 25 * time.Millisecond
	retryMaxInterval  = 250 * time.Millisecond
)

// defaultRetryOn is retried when a route asks for retries without naming
// a condition: failures before the request reached the application, safe
// for any method.
const defaultRetryOn = "connect-failure,refused-stream"

// chainRouteConfig is the route configuration of an L7 chain: one virtual
// host matching any authority, with the chain's routes in order.
func chainRouteConfig(name string, c *chain) *routev3.RouteConfiguration {
	routes := make([]*routev3.Route, len(c.routes))
	for i, r := range c.routes {
		routes[i] = envoyRoute(r)
	}
	return &routev3.RouteConfiguration{
		Name:         name,
		VirtualHosts: []*routev3.VirtualHost{{Name: c.service, Domains: []string{"*"}, Routes: routes}},
	}
}

func envoyRoute(r chainRoute) *routev3.Route {
	out := &routev3.Route{Match: routeMatch(r.match), Action: &routev3.Route_Route{Route: routeAction(r)}}
	if d := r.dest; d != nil {
		out.RequestHeadersToAdd, out.RequestHeadersToRemove = headerMutations(d.RequestHeaders)
		out.ResponseHeadersToAdd, out.ResponseHeadersToRemove = headerMutations(d.ResponseHeaders)
	}
	return out
}

func routeAction(r chainRoute) *routev3.RouteAction {
	a := &routev3.RouteAction{}
	if r.split {
		wc := &routev3.WeightedCluster{}
		for _, s := range r.splits {
			cw := &routev3.WeightedCluster_ClusterWeight{Name: s.to.target.clusterName(), Weight: wrapperspb.UInt32(s.weight)}
			cw.RequestHeadersToAdd, cw.RequestHeadersToRemove = headerMutations(s.request)
			cw.ResponseHeadersToAdd, cw.ResponseHeadersToRemove = headerMutations(s.response)
			wc.Clusters = append(wc.Clusters, cw)
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	} else {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: r.splits[0].to.target.clusterName()}
	}
	// One hash policy per route: the first hash-based resolver's, as in
	// Consul.
	for _, s := range r.splits {
		if hashBased(s.to.lb) {
			a.HashPolicy = hashPolicies(s.to.lb)
			break
		}
	}
	timeout := routeTimeout(r)
	if timeout != nil {
		a.Timeout = timeout
	}
	d := r.dest
	if d == nil {
		return a
	}
	if d.IdleTimeout != 0 {
		a.IdleTimeout = durationpb.New(max(d.IdleTimeout, 0))
	}
	a.PrefixRewrite = d.PrefixRewrite
	if d.HasRetries() {
		a.RetryPolicy = retryPolicy(d, timeout)
	}
	return a
}

// routeTimeout is the router destination's RequestTimeout, else, for a
// route to a single target, its resolver's; nil when neither is set (the
// default of 15 s applies). A negative timeout disables it (0).
func routeTimeout(r chainRoute) *durationpb.Duration {
	var t time.Duration
	switch {
	case r.dest != nil && r.dest.RequestTimeout != 0:
		t = r.dest.RequestTimeout
	case !r.split:
		t = r.splits[0].to.requestTimeout
	}
	if t == 0 {
		return nil
	}
	return durationpb.New(max(t, 0))
}

// retryPolicy retries on the destination's conditions, at most NumRetries
// times (1 when unset), with back-off. With a route timeout, each attempt
// gets an equal share of it as per_try_timeout.
func retryPolicy(d *catalog.RouteDestination, timeout *durationpb.Duration) *routev3.RetryPolicy {
	on := slices.Clone(d.RetryOn)
	if d.RetryOnConnectFailure && !slices.Contains(on, "connect-failure") {
		on = append(on, "connect-failure")
	}
	if len(d.RetryOnStatusCodes) > 0 {
		on = append(on, "retriable-status-codes")
	}
	retryOn := strings.Join(on, ",")
	if retryOn == "" {
		retryOn = defaultRetryOn
	}
	n := max(d.NumRetries, 1)
	p := &routev3.RetryPolicy{
		RetryOn:              retryOn,
		NumRetries:           wrapperspb.UInt32(n),
		RetriableStatusCodes: d.RetryOnStatusCodes,
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
			BaseInterval: durationpb.New(retryBaseInterval),
			MaxInterval:  durationpb.New(retryMaxInterval),
		},
	}
	if timeout != nil && timeout.AsDuration() > 0 {
		p.PerTryTimeout = durationpb.New((timeout.AsDuration() / time.Duration(n+1)).Truncate(time.Millisecond))
	}
	return p
}

func routeMatch(m *catalog.RouteHTTPMatch) *routev3.RouteMatch {
	out := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if m == nil {
		return out
	}
	switch {
	case m.PathExact != "":
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: m.PathExact}
	case m.PathPrefix != "":
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.PathPrefix}
	case m.PathRegex != "":
		re := m.PathRegex
		if m.CaseInsensitive {
			re = "(?i)" + re // case_sensitive does not apply to regexes
		}
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}
	}
	if m.CaseInsensitive && m.PathRegex == "" {
		out.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, headerMatcher(catalog.IntentionHTTPHeader{
			Name: h.Name, Present: h.Present, Exact: h.Exact, Prefix: h.Prefix, Suffix: h.Suffix, Regex: h.Regex, Invert: h.Invert,
		}))
	}
	if len(m.Methods) > 0 {
		out.Headers = append(out.Headers, methodMatcher(m.Methods))
	}
	for _, q := range m.QueryParams {
		out.QueryParameters = append(out.QueryParameters, queryParamMatcher(q))
	}
	return out
}

// methodMatcher matches any of methods on the :method pseudo-header.
func methodMatcher(methods []string) *routev3.HeaderMatcher {
	re := make([]string, len(methods))
	for i, m := range methods {
		re[i] = regexp.QuoteMeta(strings.ToUpper(m))
	}
	return &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
			SafeRegex: &matcherv3.RegexMatcher{Regex: "^(" + strings.Join(re, "|") + ")$"},
		}},
	}}
}

func queryParamMatcher(q catalog.RouteQueryParamMatch) *routev3.QueryParameterMatcher {
	out := &routev3.QueryParameterMatcher{Name: q.Name}
	switch {
	case q.Exact != "":
		out.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: q.Exact},
		}}
	case q.Regex != "":
		out.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: q.Regex}},
		}}
	default:
		out.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
	}
	return out
}

// headerMutations turns header modifiers into Envoy's: Add appends
// (APPEND_IF_EXISTS_OR_ADD), Set replaces (OVERWRITE_IF_EXISTS_OR_ADD),
// Remove removes; names in sorted order.
func headerMutations(m *catalog.HeaderModifiers) ([]*corev3.HeaderValueOption, []string) {
	if m == nil {
		return nil, nil
	}
	var add []*corev3.HeaderValueOption
	for _, kv := range []struct {
		values map[string]string
		action corev3.HeaderValueOption_HeaderAppendAction
	}{
		{m.Add, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
		{m.Set, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
	} {
		for _, name := range slices.Sorted(maps.Keys(kv.values)) {
			add = append(add, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: strings.ToLower(name), Value: kv.values[name]},
				AppendAction: kv.action,
			})
		}
	}
	var remove []string
	for _, name := range m.Remove {
		remove = append(remove, strings.ToLower(name))
	}
	return add, remove
}
