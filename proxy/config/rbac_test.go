package config

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	v3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/rbac"
)

const (
	lbID  = "spiffe://weft.local/ns/default/dc/dc2/svc/lb"
	opsID = "spiffe://weft.local/ns/default/dc/dc1/svc/ops"
	webID = "spiffe://weft.local/ns/default/dc/dc1/svc/web"
)

func regexPrincipal(re string) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}},
	}}}
}

func svcRegex(svc string) *rbacv3.Principal {
	return regexPrincipal(`^spiffe://weft\.local/ns/default/dc/[^/]+/svc/` + svc + `$`)
}

func andIDs(ids ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ids}}}
}

func orIDs(ids ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ids}}}
}

func notID(id *rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: id}}
}

func header(h *routev3.HeaderMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: h}}
}

func rbacListener(rules *rbacv3.RBAC) *listenerv3.Listener {
	l := publicTCP()
	l.FilterChains[0].Filters = append([]*listenerv3.Filter{xdstest.NetworkRBAC(rules)}, l.FilterChains[0].Filters...)
	return l
}

func httpRBACListener(filters ...*hcmv3.HttpFilter) *listenerv3.Listener {
	return xdstest.Listener("public_listener", "127.0.0.1:21000", xdstest.HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: xdstest.RouteConfig("local_app", "local_app")},
		HttpFilters:    append(filters, xdstest.Router()),
	}))
}

func compileOne(t *testing.T, m proto.Message) *Listener {
	t.Helper()
	rt, err := Compile(state(m))
	if err != nil {
		t.Fatal(err)
	}
	return rt.Listeners[0]
}

// TestCompileNetworkRBAC compiles the L4 intentions of the control
// plane's default-deny golden: allow lb, allow ops unless it is lb or
// batch, deny the rest.
func TestCompileNetworkRBAC(t *testing.T) {
	l := compileOne(t, rbacListener(xdstest.RBAC(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{
		"intention-0-from-lb":  xdstest.Policy(xdstest.AnyPermission(), svcRegex("lb")),
		"intention-2-from-ops": xdstest.Policy(xdstest.AnyPermission(), andIDs(svcRegex("ops"), notID(orIDs(svcRegex("lb"), svcRegex("batch"))))),
	})))
	if len(l.RBAC) != 1 || l.RBAC[0].Action != rbac.Allow || len(l.RBAC[0].Policies) != 2 || l.RBAC[0].Policies[0].Name != "intention-0-from-lb" {
		t.Fatalf("network RBAC = %+v", l.RBAC)
	}
	for peer, want := range map[string]bool{lbID: true, opsID: true, webID: false, "": false} {
		r := &rbac.Request{Authenticated: peer != "", Peer: peer}
		if got := rbac.AllowedByAll(l.RBAC, r); got != want {
			t.Errorf("peer %q allowed = %v, want %v", peer, got, want)
		}
	}
}

// TestCompileHTTPRBAC compiles the L7 golden: deny lb on /admin, allow
// every other mesh service, and method/header permissions.
func TestCompileHTTPRBAC(t *testing.T) {
	l := compileOne(t, httpRBACListener(
		&hcmv3.HttpFilter{Name: "envoy.filters.http.rbac", Disabled: true,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: xdstest.Any(&rbachttpv3.RBAC{Rules: &rbacv3.RBAC{}})}},
		xdstest.HTTPRBAC(xdstest.RBAC(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
			"intention-0-from-lb-permission-0": xdstest.Policy([]*rbacv3.Permission{xdstest.PathPrefix("/admin")}, svcRegex("lb")),
			"intention-1-from-*":               xdstest.Policy(xdstest.AnyPermission(), notID(regexPrincipal(`^spiffe://weft\.local/ns/default/dc/[^/]+/svc/[^/]+$`))),
			"deletes": xdstest.Policy([]*rbacv3.Permission{header(&routev3.HeaderMatcher{Name: ":method",
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "DELETE"}}}})},
				&rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}),
		})),
	))
	if len(l.HTTP.RBAC) != 1 {
		t.Fatalf("HTTP RBAC = %+v; want one engine (the disabled filter skipped)", l.HTTP.RBAC)
	}
	tests := []struct {
		peer, method, path string
		want               bool
	}{
		{lbID, "GET", "/admin/users", false},
		{lbID, "GET", "/public", true},
		{webID, "GET", "/admin/users", true},
		{webID, "DELETE", "/x", false},
		{"spiffe://evil.local/ns/default/dc/dc1/svc/x", "GET", "/public", false},
		{"", "GET", "/public", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		req := &rbac.Request{Authenticated: tt.peer != "", Peer: tt.peer, HTTP: r, Path: r.URL.Path}
		if got := rbac.AllowedByAll(l.HTTP.RBAC, req); got != tt.want {
			t.Errorf("%s %s %s allowed = %v, want %v", tt.peer, tt.method, tt.path, got, tt.want)
		}
	}
}

func TestCompileRBACWithoutRulesEnforcesNothing(t *testing.T) {
	l := compileOne(t, rbacListener(nil))
	if len(l.RBAC) != 0 {
		t.Errorf("RBAC without rules compiled to %+v, want no engine (Envoy: no enforcement)", l.RBAC)
	}
}

func TestCompileRejectsRBAC(t *testing.T) {
	// "|" separates the resource prefix from the detail (see TLS).
	const pl = `listener "public_listener": filter chain 0: |`
	anyone := &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
	network := func(p *rbacv3.Policy) *listenerv3.Listener {
		return rbacListener(xdstest.RBAC(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"p": p}))
	}
	httpPolicy := func(p *rbacv3.Policy) *listenerv3.Listener {
		return httpRBACListener(xdstest.HTTPRBAC(xdstest.RBAC(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{"p": p})))
	}
	withNetworkFilter := func(f *rbacnetv3.RBAC) *listenerv3.Listener {
		l := publicTCP()
		l.FilterChains[0].Filters = append([]*listenerv3.Filter{{Name: "envoy.filters.network.rbac",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: xdstest.Any(f)}}}, l.FilterChains[0].Filters...)
		return l
	}
	rules := xdstest.RBAC(rbacv3.RBAC_ALLOW, nil)
	perRoute := func(rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
		rc.VirtualHosts[0].Routes[0].TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.rbac": xdstest.Any(&rbachttpv3.RBACPerRoute{})}
		return rc
	}
	tests := []struct {
		name    string
		in      proto.Message
		wantErr string
	}{
		{"LOG action", rbacListener(xdstest.RBAC(rbacv3.RBAC_LOG, nil)), pl + `envoy.filters.network.rbac: rules: action LOG is not supported`},
		{"CEL condition", network(&rbacv3.Policy{Permissions: xdstest.AnyPermission(), Principals: []*rbacv3.Principal{anyone}, Condition: &exprpb.Expr{}}),
			pl + `envoy.filters.network.rbac: rules: policy "p": condition is not supported`},
		{"source_ip principal", network(xdstest.Policy(xdstest.AnyPermission(), &rbacv3.Principal{Identifier: &rbacv3.Principal_SourceIp{SourceIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0"}}})),
			pl + `policy "p": principals[0]: principal source_ip is not supported`},
		{"nested unsupported principal", network(xdstest.Policy(xdstest.AnyPermission(), notID(orIDs(&rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: &routev3.HeaderMatcher{Name: "x"}}})))),
			pl + `policy "p": principals[0]: not_id: or_ids: ids[0]: principal header is not supported`},
		{"any: false", network(xdstest.Policy(xdstest.AnyPermission(), &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: false}})),
			pl + `Principal.Any: value must equal true`},
		{"custom string matcher", network(xdstest.Policy(xdstest.AnyPermission(), &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
			PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Custom{Custom: &xdscorev3.TypedExtensionConfig{Name: "x", TypedConfig: xdstest.Any(&rbacv3.RBAC{})}}}}}})),
			pl + `principals[0]: authenticated: principal_name: string matcher: custom is not supported`},
		{"bad principal regex", network(xdstest.Policy(xdstest.AnyPermission(), regexPrincipal("(("))),
			pl + `principals[0]: authenticated: principal_name: safe_regex "(("`},
		{"header permission in a network filter", network(xdstest.Policy([]*rbacv3.Permission{header(&routev3.HeaderMatcher{Name: "x"})}, anyone)),
			pl + `permissions[0]: header permissions are not supported in a network filter`},
		{"path permission in a network filter", network(xdstest.Policy([]*rbacv3.Permission{xdstest.PathPrefix("/admin")}, anyone)),
			pl + `permissions[0]: url_path permissions are not supported in a network filter`},
		{"destination_ip permission", network(xdstest.Policy([]*rbacv3.Permission{{Rule: &rbacv3.Permission_DestinationIp{DestinationIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0"}}}}, anyone)),
			pl + `permissions[0]: permission destination_ip is not supported`},
		{"requested_server_name in and_rules", network(xdstest.Policy([]*rbacv3.Permission{{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: []*rbacv3.Permission{
			{Rule: &rbacv3.Permission_RequestedServerName{RequestedServerName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x"}}}}}}}}}, anyone)),
			pl + `permissions[0]: and_rules: rules[0]: permission requested_server_name is not supported`},
		{"shadow rules", withNetworkFilter(&rbacnetv3.RBAC{StatPrefix: "x", Rules: rules, ShadowRules: rules}),
			pl + `envoy.filters.network.rbac: shadow_rules is not supported`},
		{"delay_deny", withNetworkFilter(&rbacnetv3.RBAC{StatPrefix: "x", Rules: rules, DelayDeny: durationpb.New(time.Second)}),
			pl + `envoy.filters.network.rbac: delay_deny is not supported`},
		{"audit logging", rbacListener(&rbacv3.RBAC{AuditLoggingOptions: &rbacv3.RBAC_AuditLoggingOptions{}}),
			pl + `envoy.filters.network.rbac: rules: audit_logging_options is not supported`},
		{"range header matcher", httpPolicy(xdstest.Policy([]*rbacv3.Permission{header(&routev3.HeaderMatcher{Name: "x-n",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &v3.Int64Range{Start: 1, End: 2}}})}, anyone)),
			pl + `http_connection_manager: envoy.filters.http.rbac: rules: policy "p": permissions[0]: header: range_match is not supported`},
		{"http matcher API", httpRBACListener(&hcmv3.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: xdstest.Any(&rbachttpv3.RBAC{ShadowRules: rules})}}),
			pl + `http_connection_manager: envoy.filters.http.rbac: shadow_rules is not supported`},
		{"per-route RBAC", perRoute(xdstest.RouteConfig("api", api)),
			`route configuration "api": |virtual host "api": route 0 (""): typed_per_filter_config "envoy.filters.http.rbac": per-route RBAC is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state(tt.in))
			resource, detail, _ := strings.Cut(tt.wantErr, "|")
			if err == nil || !strings.HasPrefix(err.Error(), resource) || !strings.Contains(err.Error(), detail) {
				t.Errorf("Compile error:\n  %v\nwant it to start with %q and contain:\n  %s", err, resource, detail)
			}
		})
	}
}
