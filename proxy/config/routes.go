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
	if err := checkPerFilterConfig(rc.GetTypedPerFilterConfig()); err != nil {
		return nil, err
	}
	vhosts := make([]route.VirtualHost, 0, len(rc.GetVirtualHosts()))
	for _, vh := range rc.GetVirtualHosts() {
		v, err := compileVirtualHost(vh)
		if err != nil {
			return nil, fmt.Errorf("virtual host %q: %w", vh.GetName(), err)
		}
		vhosts = append(vhosts, v)
	}
	return route.NewTable(rc.GetName(), vhosts)
}

func compileVirtualHost(vh *routev3.VirtualHost) (route.VirtualHost, error) {
	out := route.VirtualHost{Name: vh.GetName(), Domains: vh.GetDomains()}
	if vh.GetRequireTls() != routev3.VirtualHost_NONE {
		return out, fmt.Errorf("require_tls is not supported")
	}
	if err := checkPerFilterConfig(vh.GetTypedPerFilterConfig()); err != nil {
		return out, err
	}
	for i, r := range vh.GetRoutes() {
		cr, err := compileRoute(r)
		if err != nil {
			return out, fmt.Errorf("route %d (%q): %w", i, r.GetName(), err)
		}
		out.Routes = append(out.Routes, cr)
	}
	return out, nil
}

func compileRoute(r *routev3.Route) (route.Route, error) {
	if err := checkPerFilterConfig(r.GetTypedPerFilterConfig()); err != nil {
		return route.Route{}, err
	}
	m, err := compileMatch(r.GetMatch())
	if err != nil {
		return route.Route{}, fmt.Errorf("match: %w", err)
	}
	cluster, err := compileAction(r)
	if err != nil {
		return route.Route{}, err
	}
	return route.Route{Match: m, Cluster: cluster}, nil
}

func compileMatch(m *routev3.RouteMatch) (route.Match, error) {
	if err := unsupportedMatchFields(m); err != nil {
		return route.Match{}, err
	}
	caseInsensitive := m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		return route.Match{Kind: route.Prefix, Value: ps.Prefix, CaseInsensitive: caseInsensitive}, nil
	case *routev3.RouteMatch_Path:
		return route.Match{Kind: route.Path, Value: ps.Path, CaseInsensitive: caseInsensitive}, nil
	case *routev3.RouteMatch_SafeRegex:
		return route.NewRegexMatch(ps.SafeRegex.GetRegex())
	}
	return route.Match{}, fmt.Errorf("path specifier %T is not supported", m.GetPathSpecifier())
}

func unsupportedMatchFields(m *routev3.RouteMatch) error {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"headers", len(m.GetHeaders()) > 0},
		{"query_parameters", len(m.GetQueryParameters()) > 0},
		{"cookies", len(m.GetCookies()) > 0},
		{"grpc", m.GetGrpc() != nil},
		{"runtime_fraction", m.GetRuntimeFraction() != nil},
		{"tls_context", m.GetTlsContext() != nil},
		{"dynamic_metadata", len(m.GetDynamicMetadata()) > 0},
		{"filter_state", len(m.GetFilterState()) > 0},
	} {
		if f.set {
			return fmt.Errorf("matching on %s is not supported", f.name)
		}
	}
	return nil
}

// compileAction returns the target cluster of a route's action.
func compileAction(r *routev3.Route) (string, error) {
	switch r.GetAction().(type) {
	case *routev3.Route_Route:
	case *routev3.Route_Redirect:
		return "", fmt.Errorf("redirect action is not supported")
	case *routev3.Route_DirectResponse:
		return "", fmt.Errorf("direct_response action is not supported")
	default:
		return "", fmt.Errorf("action %T is not supported", r.GetAction())
	}
	a := r.GetRoute()
	switch {
	case a.GetWeightedClusters() != nil:
		return "", fmt.Errorf("weighted_clusters are not supported")
	case a.GetClusterHeader() != "":
		return "", fmt.Errorf("cluster_header is not supported")
	case a.GetCluster() == "":
		return "", fmt.Errorf("cluster specifier %T is not supported", a.GetClusterSpecifier())
	case a.GetPrefixRewrite() != "" || a.GetRegexRewrite() != nil || a.GetPathRewritePolicy() != nil || a.GetPathRewrite() != "":
		return "", fmt.Errorf("path rewrites are not supported")
	case a.GetHostRewriteSpecifier() != nil:
		return "", fmt.Errorf("host rewrites are not supported")
	}
	return a.GetCluster(), nil
}
