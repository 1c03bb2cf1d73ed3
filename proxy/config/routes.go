//lint:file-ignore SA1019 per_request_buffer_limit_bytes is deprecated but still sent; it sizes the retry buffer.

package config

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/proxy/route"
)

// compileRouteConfig compiles a RouteConfiguration (RDS or inline).
func compileRouteConfig(rc *routev3.RouteConfiguration) (*route.Table, error) {
	if rc.GetVhds() != nil {
		return nil, fmt.Errorf("vhds is not supported")
	}
	if err := onlyFields(rc, "name", "virtual_hosts", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove", "most_specific_header_mutations_wins",
		"validate_clusters", "max_direct_response_body_size_bytes", "typed_per_filter_config",
		"ignore_port_in_host_matching", "metadata"); err != nil {
		return nil, err
	}
	if err := checkPerFilterConfig(rc.GetTypedPerFilterConfig()); err != nil {
		return nil, err
	}
	cfg := route.Config{Name: rc.GetName(), MostSpecificWins: rc.GetMostSpecificHeaderMutationsWins()}
	var err error
	if cfg.RequestHeaders, err = compileMutation(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(), true); err != nil {
		return nil, err
	}
	if cfg.ResponseHeaders, err = compileMutation(rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove(), false); err != nil {
		return nil, err
	}
	maxDirectBody := uint32(DefaultMaxDirectResponseBody)
	if m := rc.GetMaxDirectResponseBodySizeBytes(); m != nil {
		maxDirectBody = m.GetValue()
	}
	for _, vh := range rc.GetVirtualHosts() {
		v, err := compileVirtualHost(vh, maxDirectBody)
		if err != nil {
			return nil, fmt.Errorf("virtual host %q: %w", vh.GetName(), err)
		}
		cfg.VirtualHosts = append(cfg.VirtualHosts, v)
	}
	return route.New(cfg)
}

// compileVirtualHost compiles a virtual host; maxDirectBody bounds the
// bodies of its direct responses.
func compileVirtualHost(vh *routev3.VirtualHost, maxDirectBody uint32) (route.VirtualHost, error) {
	out := route.VirtualHost{Name: vh.GetName(), Domains: vh.GetDomains()}
	if vh.GetRequireTls() != routev3.VirtualHost_NONE {
		return out, fmt.Errorf("require_tls is not supported")
	}
	if err := onlyFields(vh, "name", "domains", "routes", "require_tls", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove", "typed_per_filter_config", "include_request_attempt_count",
		"include_attempt_count_in_response", "retry_policy", "per_request_buffer_limit_bytes", "metadata"); err != nil {
		return out, err
	}
	if err := checkPerFilterConfig(vh.GetTypedPerFilterConfig()); err != nil {
		return out, err
	}
	var err error
	if out.RequestHeaders, err = compileMutation(vh.GetRequestHeadersToAdd(), vh.GetRequestHeadersToRemove(), true); err != nil {
		return out, err
	}
	if out.ResponseHeaders, err = compileMutation(vh.GetResponseHeadersToAdd(), vh.GetResponseHeadersToRemove(), false); err != nil {
		return out, err
	}
	defaults := vhostDefaults{
		attemptCount:           vh.GetIncludeRequestAttemptCount(),
		attemptCountInResponse: vh.GetIncludeAttemptCountInResponse(),
		bufferLimit:            int64(route.DefaultBufferLimit),
		maxDirectBody:          maxDirectBody,
	}
	if b := vh.GetPerRequestBufferLimitBytes(); b != nil {
		defaults.bufferLimit = int64(b.GetValue())
	}
	if rp := vh.GetRetryPolicy(); rp != nil {
		if defaults.retry, err = compileRetryPolicy(rp); err != nil {
			return out, fmt.Errorf("retry_policy: %w", err)
		}
	}
	for i, r := range vh.GetRoutes() {
		cr, err := compileRoute(r, &defaults)
		if err != nil {
			return out, fmt.Errorf("route %d (%q): %w", i, r.GetName(), err)
		}
		out.Routes = append(out.Routes, cr)
	}
	return out, nil
}

func compileRoute(r *routev3.Route, defaults *vhostDefaults) (route.Route, error) {
	if err := onlyFields(r, "name", "match", "route", "redirect", "direct_response", "metadata", "decorator",
		"typed_per_filter_config", "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
		"response_headers_to_remove", "tracing", "per_request_buffer_limit_bytes", "stat_prefix"); err != nil {
		return route.Route{}, err
	}
	if err := checkPerFilterConfig(r.GetTypedPerFilterConfig()); err != nil {
		return route.Route{}, err
	}
	out := route.Route{Name: r.GetName()}
	var err error
	if out.Match, err = compileMatch(r.GetMatch()); err != nil {
		return route.Route{}, fmt.Errorf("match: %w", err)
	}
	if out.Action, err = compileAction(r, defaults); err != nil {
		return route.Route{}, err
	}
	if b := r.GetPerRequestBufferLimitBytes(); b != nil {
		out.Action.BufferLimit = int64(b.GetValue())
	}
	if out.RequestHeaders, err = compileMutation(r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove(), true); err != nil {
		return route.Route{}, err
	}
	if out.ResponseHeaders, err = compileMutation(r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove(), false); err != nil {
		return route.Route{}, err
	}
	if ph := out.Action.HasPrefixRewrite; ph && out.Match.Path.Kind == route.Regex {
		return route.Route{}, fmt.Errorf("route: prefix_rewrite needs a prefix, path or path_separated_prefix match")
	}
	return out, nil
}

func compileMatch(m *routev3.RouteMatch) (route.Match, error) {
	if err := onlyFields(m, "prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive", "headers", "query_parameters", "grpc"); err != nil {
		return route.Match{}, err
	}
	out := route.Match{GRPC: m.GetGrpc() != nil}
	caseInsensitive := m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.Path = route.PathMatch{Kind: route.Prefix, Value: ps.Prefix, CaseInsensitive: caseInsensitive}
	case *routev3.RouteMatch_Path:
		out.Path = route.PathMatch{Kind: route.Path, Value: ps.Path, CaseInsensitive: caseInsensitive}
	case *routev3.RouteMatch_PathSeparatedPrefix:
		out.Path = route.PathMatch{Kind: route.SeparatedPrefix, Value: ps.PathSeparatedPrefix, CaseInsensitive: caseInsensitive}
	case *routev3.RouteMatch_SafeRegex:
		if err := onlyFields(ps.SafeRegex, "regex", "google_re2"); err != nil {
			return route.Match{}, fmt.Errorf("safe_regex: %w", err)
		}
		p, err := route.NewRegexMatch(ps.SafeRegex.GetRegex())
		if err != nil {
			return route.Match{}, err
		}
		out.Path = p
	default:
		return route.Match{}, fmt.Errorf("path specifier %s is not supported", oneofName(m, "path_specifier"))
	}
	for i, h := range m.GetHeaders() {
		hm, err := compileRouteHeaderMatcher(h)
		if err != nil {
			return route.Match{}, fmt.Errorf("headers[%d] (%q): %w", i, h.GetName(), err)
		}
		out.Headers = append(out.Headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qm, err := compileQueryMatcher(q)
		if err != nil {
			return route.Match{}, fmt.Errorf("query_parameters[%d] (%q): %w", i, q.GetName(), err)
		}
		out.Query = append(out.Query, qm)
	}
	return out, nil
}
