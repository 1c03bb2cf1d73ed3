package config

import (
	"fmt"
	"maps"
	"slices"

	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/rbac"
)

var (
	networkRBACType  = typeURL(&rbacnetv3.RBAC{})
	httpRBACType     = typeURL(&rbachttpv3.RBAC{})
	httpRBACPerRoute = typeURL(&rbachttpv3.RBACPerRoute{})
)

const (
	networkRBACName = "envoy.filters.network.rbac"
	httpRBACName    = "envoy.filters.http.rbac"
)

// compileNetworkRBAC compiles an envoy.filters.network.rbac filter. It
// returns nil (no enforcement) when the filter has no rules, as Envoy.
func compileNetworkRBAC(typed *anypb.Any) (*rbac.Engine, error) {
	var f rbacnetv3.RBAC
	if err := unpack(networkRBACName, typed, &f); err != nil {
		return nil, err
	}
	// enforcement_type only says when Envoy decides; weft-proxy decides
	// once the handshake is done and again whenever the rules change.
	if err := onlyFields(&f, "stat_prefix", "rules", "enforcement_type", "shadow_rules_stat_prefix"); err != nil {
		return nil, fmt.Errorf("%s: %w", networkRBACName, err)
	}
	e, err := compileRBACRules(f.GetRules(), false)
	if err != nil {
		return nil, fmt.Errorf("%s: rules: %w", networkRBACName, err)
	}
	return e, nil
}

// compileHTTPRBAC compiles an envoy.filters.http.rbac filter.
func compileHTTPRBAC(typed *anypb.Any) (*rbac.Engine, error) {
	var f rbachttpv3.RBAC
	if err := unpack(httpRBACName, typed, &f); err != nil {
		return nil, err
	}
	if err := onlyFields(&f, "rules", "rules_stat_prefix", "shadow_rules_stat_prefix", "track_per_rule_stats"); err != nil {
		return nil, fmt.Errorf("%s: %w", httpRBACName, err)
	}
	e, err := compileRBACRules(f.GetRules(), true)
	if err != nil {
		return nil, fmt.Errorf("%s: rules: %w", httpRBACName, err)
	}
	return e, nil
}

// compileRBACRules compiles the policies of one filter. http allows
// permissions on headers and paths, which a connection never matches:
// under a DENY they would fail open, so network filters reject them.
func compileRBACRules(rules *rbacconfigv3.RBAC, http bool) (*rbac.Engine, error) {
	if rules == nil {
		return nil, nil
	}
	if err := onlyFields(rules, "action", "policies"); err != nil {
		return nil, err
	}
	e := &rbac.Engine{}
	switch rules.GetAction() {
	case rbacconfigv3.RBAC_ALLOW:
		e.Action = rbac.Allow
	case rbacconfigv3.RBAC_DENY:
		e.Action = rbac.Deny
	default:
		return nil, fmt.Errorf("action %s is not supported", rules.GetAction())
	}
	for _, name := range slices.Sorted(maps.Keys(rules.GetPolicies())) {
		p, err := compilePolicy(name, rules.GetPolicies()[name], http)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", name, err)
		}
		e.Policies = append(e.Policies, p)
	}
	return e, nil
}

func compilePolicy(name string, p *rbacconfigv3.Policy, http bool) (rbac.Policy, error) {
	if err := onlyFields(p, "permissions", "principals"); err != nil {
		return rbac.Policy{}, err
	}
	out := rbac.Policy{Name: name}
	for i, perm := range p.GetPermissions() {
		cp, err := compilePermission(perm, http)
		if err != nil {
			return rbac.Policy{}, fmt.Errorf("permissions[%d]: %w", i, err)
		}
		out.Permissions = append(out.Permissions, cp)
	}
	for i, pr := range p.GetPrincipals() {
		cp, err := compilePrincipal(pr)
		if err != nil {
			return rbac.Policy{}, fmt.Errorf("principals[%d]: %w", i, err)
		}
		out.Principals = append(out.Principals, cp)
	}
	return out, nil
}

func compilePrincipal(p *rbacconfigv3.Principal) (rbac.Principal, error) {
	switch id := p.GetIdentifier().(type) {
	case *rbacconfigv3.Principal_Any:
		if !id.Any {
			return rbac.Principal{}, fmt.Errorf("any: false is not supported")
		}
		return rbac.AnyPrincipal(), nil
	case *rbacconfigv3.Principal_Authenticated_:
		if err := onlyFields(id.Authenticated, "principal_name"); err != nil {
			return rbac.Principal{}, fmt.Errorf("authenticated: %w", err)
		}
		if id.Authenticated.GetPrincipalName() == nil {
			return rbac.Authenticated(nil), nil
		}
		m, err := compileStringMatcher(id.Authenticated.GetPrincipalName())
		if err != nil {
			return rbac.Principal{}, fmt.Errorf("authenticated: principal_name: %w", err)
		}
		return rbac.Authenticated(&m), nil
	case *rbacconfigv3.Principal_AndIds:
		ids, err := compilePrincipals(id.AndIds.GetIds())
		return rbac.AndIDs(ids...), wrap("and_ids", err)
	case *rbacconfigv3.Principal_OrIds:
		ids, err := compilePrincipals(id.OrIds.GetIds())
		return rbac.OrIDs(ids...), wrap("or_ids", err)
	case *rbacconfigv3.Principal_NotId:
		inner, err := compilePrincipal(id.NotId)
		return rbac.NotID(inner), wrap("not_id", err)
	case nil:
		return rbac.Principal{}, fmt.Errorf("principal without an identifier")
	}
	return rbac.Principal{}, fmt.Errorf("principal %s is not supported", oneofName(p, "identifier"))
}

func compilePrincipals(ps []*rbacconfigv3.Principal) ([]rbac.Principal, error) {
	out := make([]rbac.Principal, 0, len(ps))
	for i, p := range ps {
		cp, err := compilePrincipal(p)
		if err != nil {
			return nil, fmt.Errorf("ids[%d]: %w", i, err)
		}
		out = append(out, cp)
	}
	return out, nil
}

func compilePermission(p *rbacconfigv3.Permission, http bool) (rbac.Permission, error) {
	switch r := p.GetRule().(type) {
	case *rbacconfigv3.Permission_Any:
		if !r.Any {
			return rbac.Permission{}, fmt.Errorf("any: false is not supported")
		}
		return rbac.AnyPermission(), nil
	case *rbacconfigv3.Permission_AndRules:
		rules, err := compilePermissions(r.AndRules.GetRules(), http)
		return rbac.AndRules(rules...), wrap("and_rules", err)
	case *rbacconfigv3.Permission_OrRules:
		rules, err := compilePermissions(r.OrRules.GetRules(), http)
		return rbac.OrRules(rules...), wrap("or_rules", err)
	case *rbacconfigv3.Permission_NotRule:
		inner, err := compilePermission(r.NotRule, http)
		return rbac.NotRule(inner), wrap("not_rule", err)
	case *rbacconfigv3.Permission_DestinationPort:
		return rbac.DestinationPort(r.DestinationPort), nil
	case *rbacconfigv3.Permission_Header:
		if !http {
			return rbac.Permission{}, fmt.Errorf("header permissions are not supported in a network filter")
		}
		h, err := compileHeaderMatcher(r.Header)
		return rbac.HeaderPermission(h), wrap("header", err)
	case *rbacconfigv3.Permission_UrlPath:
		if !http {
			return rbac.Permission{}, fmt.Errorf("url_path permissions are not supported in a network filter")
		}
		if err := onlyFields(r.UrlPath, "path"); err != nil {
			return rbac.Permission{}, fmt.Errorf("url_path: %w", err)
		}
		m, err := compileStringMatcher(r.UrlPath.GetPath())
		return rbac.URLPath(m), wrap("url_path", err)
	case nil:
		return rbac.Permission{}, fmt.Errorf("permission without a rule")
	}
	return rbac.Permission{}, fmt.Errorf("permission %s is not supported", oneofName(p, "rule"))
}

func compilePermissions(ps []*rbacconfigv3.Permission, http bool) ([]rbac.Permission, error) {
	out := make([]rbac.Permission, 0, len(ps))
	for i, p := range ps {
		cp, err := compilePermission(p, http)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		out = append(out, cp)
	}
	return out, nil
}

// compileHeaderMatcher compiles a route HeaderMatcher with Envoy's
// semantics (see rbac.Header).
func compileHeaderMatcher(h *routev3.HeaderMatcher) (rbac.Header, error) {
	if err := onlyFields(h, "name", "exact_match", "safe_regex_match", "present_match", "prefix_match",
		"suffix_match", "contains_match", "string_match", "invert_match", "treat_missing_header_as_empty"); err != nil {
		return rbac.Header{}, err
	}
	out := rbac.Header{Name: h.GetName(), Invert: h.GetInvertMatch(), TreatMissingAsEmpty: h.GetTreatMissingHeaderAsEmpty()}
	var (
		m   match.String
		err error
	)
	//lint:ignore SA1019 the deprecated matchers are still part of the API and control planes send them.
	switch spec := h.GetHeaderMatchSpecifier().(type) {
	case nil:
		out.Present = true
		return out, nil
	case *routev3.HeaderMatcher_PresentMatch:
		out.Present = spec.PresentMatch
		return out, nil
	case *routev3.HeaderMatcher_ExactMatch:
		if spec.ExactMatch == "" {
			out.Present = true // Envoy: an empty exact_match matches any value
			return out, nil
		}
		m, err = match.NewString(match.Exact, spec.ExactMatch, false)
	case *routev3.HeaderMatcher_PrefixMatch:
		m, err = match.NewString(match.Prefix, spec.PrefixMatch, false)
	case *routev3.HeaderMatcher_SuffixMatch:
		m, err = match.NewString(match.Suffix, spec.SuffixMatch, false)
	case *routev3.HeaderMatcher_ContainsMatch:
		m, err = match.NewString(match.Contains, spec.ContainsMatch, false)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		m, err = compileRegex(spec.SafeRegexMatch)
	case *routev3.HeaderMatcher_StringMatch:
		m, err = compileStringMatcher(spec.StringMatch)
	default:
		return rbac.Header{}, fmt.Errorf("header %q: %s is not supported", h.GetName(), oneofName(h, "header_match_specifier"))
	}
	if err != nil {
		return rbac.Header{}, fmt.Errorf("header %q: %w", h.GetName(), err)
	}
	out.Value = &m
	return out, nil
}

// checkPerFilterConfig rejects per-route RBAC overrides, which weft-proxy
// does not apply: ignoring one could let through what it denies.
func checkPerFilterConfig(configs map[string]*anypb.Any) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		if name == httpRBACName || configs[name].GetTypeUrl() == httpRBACPerRoute {
			return fmt.Errorf("typed_per_filter_config %q: per-route RBAC is not supported", name)
		}
	}
	return nil
}

func wrap(field string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}
