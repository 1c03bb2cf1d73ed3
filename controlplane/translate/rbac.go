package translate

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/weft-mesh/weft/catalog"
)

const (
	networkRBACFilter = "envoy.filters.network.rbac"
	httpRBACFilter    = "envoy.filters.http.rbac"
)

// intentionsFor returns the intentions deciding who may call a service,
// highest precedence first, as Consul evaluates them.
func intentionsFor(snap *catalog.Snapshot, service string) []catalog.Intention {
	var out []catalog.Intention
	out = append(out, snap.Intentions[service]...)
	if service != catalog.Wildcard {
		out = append(out, snap.Intentions[catalog.Wildcard]...)
	}
	for i := range out {
		if out[i].Precedence == 0 {
			out[i].Precedence = precedence(out[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Precedence > out[j].Precedence })
	return out
}

// precedence is Consul's intention precedence without namespaces: exact
// names outrank wildcards, the destination weighing more than the source.
func precedence(in catalog.Intention) int {
	p := 5
	if in.Destination != catalog.Wildcard {
		p += 3
	}
	if in.Source != catalog.Wildcard {
		p++
	}
	return p
}

func hasL7(ins []catalog.Intention) bool {
	for _, in := range ins {
		if len(in.Permissions) > 0 {
			return true
		}
	}
	return false
}

// rbacRules turns intentions into one Envoy RBAC policy set. With a default
// of deny it lists what is allowed (action ALLOW); with a default of allow
// it lists what is denied (action DENY). Each intention's principal excludes
// the sources of every intention above it, so the highest-precedence
// intention matching a source is the one that decides, as in Consul. Within
// an L7 intention the first matching permission decides; a request matching
// none falls through to the default.
//
// A source in a peer (SourcePeer) is matched in that peer's trust domain,
// which peerTrustDomain gives (empty when the peer is unknown: such a
// source matches nobody, and nobody of that peer is trusted anyway). A
// source without a peer matches this mesh's services only, as in Consul:
// "*" never covers peers.
func rbacRules(ins []catalog.Intention, trustDomains []string, peerTrustDomain func(peer string) string, defaultAllow bool) *rbacv3.RBAC {
	rules := &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{}}
	want := catalog.ActionAllow
	if defaultAllow {
		rules.Action, want = rbacv3.RBAC_DENY, catalog.ActionDeny
	}
	var above []*rbacv3.Principal
	for i, in := range ins {
		tds := trustDomains
		if in.SourcePeer != "" {
			td := peerTrustDomain(in.SourcePeer)
			if td == "" {
				continue
			}
			tds = []string{td}
		}
		src := sourcePrincipal(tds, in.Source)
		principal := excluding(src, above)
		above = append(above, src)
		if len(in.Permissions) == 0 {
			if in.Action == want {
				rules.Policies[policyName(i, -1, in)] = &rbacv3.Policy{
					Principals:  []*rbacv3.Principal{principal},
					Permissions: []*rbacv3.Permission{anyPermission()},
				}
			}
			continue
		}
		var earlier []*rbacv3.Permission // earlier permissions with the other action
		for k, perm := range in.Permissions {
			p := httpPermission(perm.HTTP)
			if perm.Action == want {
				rules.Policies[policyName(i, k, in)] = &rbacv3.Policy{
					Principals:  []*rbacv3.Principal{principal},
					Permissions: []*rbacv3.Permission{excludingPermissions(p, earlier)},
				}
			} else {
				earlier = append(earlier, p)
			}
		}
	}
	return rules
}

func policyName(i, k int, in catalog.Intention) string {
	name := "intention-" + itoa(i) + "-from-" + in.Source
	if in.SourcePeer != "" {
		name += "-of-peer-" + in.SourcePeer
	}
	if k >= 0 {
		name += "-permission-" + itoa(k)
	}
	return name
}

// sourcePrincipal matches the SPIFFE ID of a source service in any
// datacenter of the trust domains (the mesh's, then its aliases); "*"
// matches every service.
func sourcePrincipal(trustDomains []string, source string) *rbacv3.Principal {
	svc := regexp.QuoteMeta(source)
	if source == catalog.Wildcard {
		svc = "[^/]+"
	}
	quoted := make([]string, len(trustDomains))
	for i, td := range trustDomains {
		quoted[i] = regexp.QuoteMeta(td)
	}
	td := quoted[0]
	if len(quoted) > 1 {
		td = "(?:" + strings.Join(quoted, "|") + ")"
	}
	re := "^spiffe://" + td + "/ns/default/dc/[^/]+/svc/" + svc + "$"
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}},
	}}}
}

func excluding(p *rbacv3.Principal, above []*rbacv3.Principal) *rbacv3.Principal {
	if len(above) == 0 {
		return p
	}
	not := &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: &rbacv3.Principal{
		Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: append([]*rbacv3.Principal(nil), above...)}},
	}}}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: []*rbacv3.Principal{p, not}}}}
}

func excludingPermissions(p *rbacv3.Permission, earlier []*rbacv3.Permission) *rbacv3.Permission {
	if len(earlier) == 0 {
		return p
	}
	not := &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: &rbacv3.Permission{
		Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: append([]*rbacv3.Permission(nil), earlier...)}},
	}}}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: []*rbacv3.Permission{p, not}}}}
}

func anyPermission() *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
}

// httpPermission matches an L7 intention permission: every set field must
// match. A permission with no HTTP match matches every request.
func httpPermission(m *catalog.IntentionHTTPMatch) *rbacv3.Permission {
	if m == nil {
		return anyPermission()
	}
	var rules []*rbacv3.Permission
	if pm := pathMatcher(m); pm != nil {
		rules = append(rules, &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
			Rule: &matcherv3.PathMatcher_Path{Path: pm},
		}}})
	}
	if len(m.Methods) > 0 {
		re := make([]string, len(m.Methods))
		for i, meth := range m.Methods {
			re[i] = regexp.QuoteMeta(strings.ToUpper(meth))
		}
		rules = append(rules, headerPermission(&routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "^(" + strings.Join(re, "|") + ")$"}}},
		}}))
	}
	for _, h := range m.Headers {
		rules = append(rules, headerPermission(headerMatcher(h)))
	}
	switch len(rules) {
	case 0:
		return anyPermission()
	case 1:
		return rules[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: rules}}}
}

func pathMatcher(m *catalog.IntentionHTTPMatch) *matcherv3.StringMatcher {
	switch {
	case m.PathExact != "":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.PathExact}}
	case m.PathPrefix != "":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: m.PathPrefix}}
	case m.PathRegex != "":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.PathRegex}}}
	}
	return nil
}

func headerPermission(h *routev3.HeaderMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: h}}
}

func headerMatcher(h catalog.IntentionHTTPHeader) *routev3.HeaderMatcher {
	hm := &routev3.HeaderMatcher{Name: strings.ToLower(h.Name), InvertMatch: h.Invert}
	sm := func(p *matcherv3.StringMatcher) *routev3.HeaderMatcher_StringMatch {
		return &routev3.HeaderMatcher_StringMatch{StringMatch: p}
	}
	switch {
	case h.Exact != "":
		hm.HeaderMatchSpecifier = sm(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Exact}, IgnoreCase: h.IgnoreCase})
	case h.Prefix != "":
		hm.HeaderMatchSpecifier = sm(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: h.Prefix}, IgnoreCase: h.IgnoreCase})
	case h.Suffix != "":
		hm.HeaderMatchSpecifier = sm(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: h.Suffix}, IgnoreCase: h.IgnoreCase})
	case h.Contains != "":
		hm.HeaderMatchSpecifier = sm(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: h.Contains}, IgnoreCase: h.IgnoreCase})
	case h.Regex != "":
		hm.HeaderMatchSpecifier = sm(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: h.Regex}}})
	default:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return hm
}

func networkRBAC(statPrefix string, rules *rbacv3.RBAC) *listenerv3.Filter {
	return typedFilter(networkRBACFilter, &netrbacv3.RBAC{StatPrefix: statPrefix, Rules: rules})
}

func httpRBAC(rules *rbacv3.RBAC) *hcmv3.HttpFilter {
	return typedHTTPFilter(httpRBACFilter, &httprbacv3.RBAC{Rules: rules})
}

func itoa(i int) string { return strconv.Itoa(i) }
