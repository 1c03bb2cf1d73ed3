package config

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/proxy/retry"
	"github.com/weft-mesh/weft/proxy/route"
)

// vhostDefaults are the virtual host settings its routes inherit.
type vhostDefaults struct {
	retry                                *retry.Policy
	attemptCount, attemptCountInResponse bool
	bufferLimit                          int64
	// maxDirectBody bounds a direct response's body: the route
	// configuration's max_direct_response_body_size_bytes.
	maxDirectBody uint32
}

// DefaultMaxDirectResponseBody is Envoy's default
// max_direct_response_body_size_bytes.
const DefaultMaxDirectResponseBody = 4096

// compileAction compiles a route's RouteAction, or its
// DirectResponseAction.
func compileAction(r *routev3.Route, d *vhostDefaults) (route.Action, error) {
	switch r.GetAction().(type) {
	case *routev3.Route_Route:
	case *routev3.Route_Redirect:
		return route.Action{}, fmt.Errorf("redirect action is not supported")
	case *routev3.Route_DirectResponse:
		return compileDirectResponse(r.GetDirectResponse(), d.maxDirectBody)
	default:
		return route.Action{}, fmt.Errorf("action %T is not supported", r.GetAction())
	}
	a := r.GetRoute()
	if err := onlyFields(a, "cluster", "weighted_clusters", "cluster_not_found_response_code", "prefix_rewrite",
		"regex_rewrite", "host_rewrite_literal", "timeout", "idle_timeout", "retry_policy", "priority", "hash_policy",
		"max_grpc_timeout", "grpc_timeout_offset", "max_stream_duration", "include_vh_rate_limits"); err != nil {
		return route.Action{}, fmt.Errorf("route: %w", err)
	}
	out := route.Action{
		Retry:                  d.retry,
		AttemptCount:           d.attemptCount,
		AttemptCountInResponse: d.attemptCountInResponse,
		BufferLimit:            d.bufferLimit,
	}
	if err := compileTargets(a, &out); err != nil {
		return route.Action{}, fmt.Errorf("route: %w", err)
	}
	if err := compileForwarding(a, &out); err != nil {
		return route.Action{}, fmt.Errorf("route: %w", err)
	}
	return out, nil
}

// compileDirectResponse compiles a direct_response action: the route
// answers with status and body itself, without a cluster, as Envoy does.
// The status must be a final one the proxy may answer with (200 to 599);
// the body, inline, at most maxBody bytes.
func compileDirectResponse(dr *routev3.DirectResponseAction, maxBody uint32) (route.Action, error) {
	if err := onlyFields(dr, "status", "body"); err != nil {
		return route.Action{}, fmt.Errorf("direct_response: %w", err)
	}
	status := dr.GetStatus()
	if status < 200 || status > 599 {
		return route.Action{}, fmt.Errorf("direct_response: status %d is not supported; want 200 to 599", status)
	}
	var body []byte
	if b := dr.GetBody(); b.GetSpecifier() != nil {
		var err error
		if body, err = inlineBytes(b); err != nil {
			return route.Action{}, fmt.Errorf("direct_response: body: %w", err)
		}
	}
	if len(body) > int(maxBody) {
		return route.Action{}, fmt.Errorf("direct_response: body is %d bytes; the maximum is %d (max_direct_response_body_size_bytes)", len(body), maxBody)
	}
	return route.Action{Direct: &route.DirectResponse{Status: int(status), Body: body}}, nil
}

// compileTargets compiles the cluster specifier.
func compileTargets(a *routev3.RouteAction, out *route.Action) error {
	if c := a.GetClusterNotFoundResponseCode(); c != routev3.RouteAction_SERVICE_UNAVAILABLE {
		return fmt.Errorf("cluster_not_found_response_code %s is not supported", c)
	}
	if a.GetPriority() != corev3.RoutingPriority_DEFAULT {
		return fmt.Errorf("priority %s is not supported", a.GetPriority())
	}
	switch {
	case a.GetCluster() != "":
		out.Clusters = []route.WeightedCluster{{Name: a.GetCluster(), Weight: 1}}
	case a.GetWeightedClusters() != nil:
		return compileWeightedClusters(a.GetWeightedClusters(), out)
	default:
		return fmt.Errorf("cluster specifier %s is not supported", oneofName(a, "cluster_specifier"))
	}
	out.HostRewrite = a.GetHostRewriteLiteral()
	return nil
}

func compileWeightedClusters(wc *routev3.WeightedCluster, out *route.Action) error {
	if err := onlyFields(wc, "clusters", "total_weight"); err != nil {
		return fmt.Errorf("weighted_clusters: %w", err)
	}
	var sum uint64
	for i, cw := range wc.GetClusters() {
		if err := onlyFields(cw, "name", "weight", "request_headers_to_add", "request_headers_to_remove",
			"response_headers_to_add", "response_headers_to_remove", "typed_per_filter_config", "host_rewrite_literal"); err != nil {
			return fmt.Errorf("weighted_clusters: clusters[%d] (%q): %w", i, cw.GetName(), err)
		}
		if err := checkPerFilterConfig(cw.GetTypedPerFilterConfig()); err != nil {
			return fmt.Errorf("weighted_clusters: clusters[%d] (%q): %w", i, cw.GetName(), err)
		}
		c := route.WeightedCluster{Name: cw.GetName(), Weight: cw.GetWeight().GetValue(), HostRewrite: cw.GetHostRewriteLiteral()}
		var err error
		if c.RequestHeaders, err = compileMutation(cw.GetRequestHeadersToAdd(), cw.GetRequestHeadersToRemove(), true); err != nil {
			return fmt.Errorf("weighted_clusters: clusters[%d] (%q): %w", i, cw.GetName(), err)
		}
		if c.ResponseHeaders, err = compileMutation(cw.GetResponseHeadersToAdd(), cw.GetResponseHeadersToRemove(), false); err != nil {
			return fmt.Errorf("weighted_clusters: clusters[%d] (%q): %w", i, cw.GetName(), err)
		}
		sum += uint64(c.Weight)
		out.Clusters = append(out.Clusters, c)
	}
	//lint:ignore SA1019 total_weight is deprecated but must still equal the sum when set.
	if tw := wc.GetTotalWeight(); tw != nil && uint64(tw.GetValue()) != sum {
		return fmt.Errorf("weighted_clusters: total_weight %d is not the sum of the weights, %d", tw.GetValue(), sum)
	}
	if sum == 0 {
		return fmt.Errorf("weighted_clusters: the weights sum to 0")
	}
	return nil
}

// compileForwarding compiles rewrites, timeouts, retries and hashing.
func compileForwarding(a *routev3.RouteAction, out *route.Action) error {
	if a.GetPrefixRewrite() != "" {
		out.PrefixRewrite, out.HasPrefixRewrite = a.GetPrefixRewrite(), true
	}
	if rr := a.GetRegexRewrite(); rr != nil {
		if err := onlyFields(rr.GetPattern(), "regex", "google_re2"); err != nil {
			return fmt.Errorf("regex_rewrite: pattern: %w", err)
		}
		if err := out.SetRegexRewrite(rr.GetPattern().GetRegex(), rr.GetSubstitution()); err != nil {
			return err
		}
	}
	out.Timeout = route.DefaultTimeout
	if t := a.GetTimeout(); t != nil {
		out.Timeout = t.AsDuration()
	}
	if t := a.GetIdleTimeout(); t != nil {
		out.IdleTimeout, out.HasIdleTimeout = t.AsDuration(), true
	}
	if err := compileGRPCTimeouts(a, out); err != nil {
		return err
	}
	if rp := a.GetRetryPolicy(); rp != nil {
		p, err := compileRetryPolicy(rp)
		if err != nil {
			return fmt.Errorf("retry_policy: %w", err)
		}
		out.Retry = p
	}
	for i, hp := range a.GetHashPolicy() {
		p, ok, err := compileHashPolicy(hp)
		if err != nil {
			return fmt.Errorf("hash_policy[%d]: %w", i, err)
		}
		if ok {
			out.Hash = append(out.Hash, p)
		}
	}
	return nil
}

// compileGRPCTimeouts compiles max_grpc_timeout / grpc_timeout_offset and
// their successors in max_stream_duration.
func compileGRPCTimeouts(a *routev3.RouteAction, out *route.Action) error {
	//lint:ignore SA1019 the deprecated fields are still sent by control planes.
	if t := a.GetMaxGrpcTimeout(); t != nil {
		out.MaxGRPCTimeout, out.HasMaxGRPCTimeout = t.AsDuration(), true
	}
	//lint:ignore SA1019 see above.
	if t := a.GetGrpcTimeoutOffset(); t != nil {
		out.GRPCTimeoutOffset = t.AsDuration()
	}
	msd := a.GetMaxStreamDuration()
	if msd == nil {
		return nil
	}
	if err := onlyFields(msd, "max_stream_duration", "grpc_timeout_header_max", "grpc_timeout_header_offset"); err != nil {
		return fmt.Errorf("max_stream_duration: %w", err)
	}
	out.MaxStreamDuration = msd.GetMaxStreamDuration().AsDuration()
	if t := msd.GetGrpcTimeoutHeaderMax(); t != nil {
		out.MaxGRPCTimeout, out.HasMaxGRPCTimeout = t.AsDuration(), true
	}
	if t := msd.GetGrpcTimeoutHeaderOffset(); t != nil {
		out.GRPCTimeoutOffset = t.AsDuration()
	}
	return nil
}

// previousHostsPredicate is the only retry host predicate: weft-proxy
// always prefers hosts not tried yet.
const (
	previousHostsName = "envoy.retry_host_predicates.previous_hosts"
	previousHostsType = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)

func compileRetryPolicy(rp *routev3.RetryPolicy) (*retry.Policy, error) {
	if err := onlyFields(rp, "retry_on", "num_retries", "per_try_timeout", "retry_host_predicate",
		"host_selection_retry_max_attempts", "retriable_status_codes", "retry_back_off"); err != nil {
		return nil, err
	}
	on, err := retry.ParseConditions(rp.GetRetryOn())
	if err != nil {
		return nil, err
	}
	p := &retry.Policy{On: on, NumRetries: retry.DefaultNumRetries, HostSelectionAttempts: 1}
	setUint32(&p.NumRetries, rp.GetNumRetries())
	p.PerTryTimeout = rp.GetPerTryTimeout().AsDuration()
	if n := rp.GetHostSelectionRetryMaxAttempts(); n > 0 {
		p.HostSelectionAttempts = uint32(min(n, 5))
	}
	for _, c := range rp.GetRetriableStatusCodes() {
		p.StatusCodes = append(p.StatusCodes, int(c))
	}
	for i, pred := range rp.GetRetryHostPredicate() {
		if t := extensionType(pred.GetName(), pred.GetTypedConfig()); t != previousHostsType && t != previousHostsName {
			return nil, fmt.Errorf("retry_host_predicate[%d] %q is not supported (only %s)", i, pred.GetName(), previousHostsName)
		}
	}
	if bo := rp.GetRetryBackOff(); bo != nil {
		p.BackoffBase = bo.GetBaseInterval().AsDuration()
		p.BackoffMax = 10 * p.BackoffBase
		if m := bo.GetMaxInterval(); m != nil {
			p.BackoffMax = m.AsDuration()
		}
		if p.BackoffMax < p.BackoffBase {
			return nil, fmt.Errorf("retry_back_off: max_interval %s is below base_interval %s", p.BackoffMax, p.BackoffBase)
		}
	}
	return p, nil
}

// compileHashPolicy compiles one hash_policy entry; ok is false for a
// policy that can never yield a hash (source_ip: false).
func compileHashPolicy(hp *routev3.RouteAction_HashPolicy) (route.HashPolicy, bool, error) {
	out := route.HashPolicy{Terminal: hp.GetTerminal()}
	switch spec := hp.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		if err := onlyFields(spec.Header, "header_name"); err != nil {
			return out, false, fmt.Errorf("header: %w", err)
		}
		out.Kind, out.Name = route.HashHeader, canonicalHeader(spec.Header.GetHeaderName())
	case *routev3.RouteAction_HashPolicy_Cookie_:
		c := spec.Cookie
		if err := onlyFields(c, "name", "ttl", "path"); err != nil {
			return out, false, fmt.Errorf("cookie: %w", err)
		}
		out.Kind, out.Name, out.CookiePath = route.HashCookie, c.GetName(), c.GetPath()
		if c.GetTtl() != nil {
			out.CookieTTL, out.HasCookieTTL = c.GetTtl().AsDuration(), true
		}
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		out.Kind, out.Name = route.HashQuery, spec.QueryParameter.GetName()
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		if !spec.ConnectionProperties.GetSourceIp() {
			return out, false, nil
		}
		out.Kind = route.HashSourceIP
	default:
		return out, false, fmt.Errorf("%s is not supported", oneofName(hp, "policy_specifier"))
	}
	return out, true, nil
}
