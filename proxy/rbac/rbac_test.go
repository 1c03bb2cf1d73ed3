package rbac

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/weft-mesh/weft/proxy/match"
)

const (
	web = "spiffe://weft.local/ns/default/dc/dc1/svc/web"
	lb  = "spiffe://weft.local/ns/default/dc/dc2/svc/lb"
)

func str(kind match.Kind, v string) *match.String {
	m := match.MustString(kind, v, false)
	return &m
}

func peer(id string) *Request { return &Request{Authenticated: true, Peer: id, DestinationPort: 21000} }

func httpReq(id, method, target string, header http.Header) *Request {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	return &Request{Authenticated: id != "", Peer: id, DestinationPort: 21000, HTTP: r, Path: r.URL.Path}
}

func TestNetworkDecisions(t *testing.T) {
	lbRegex := Authenticated(str(match.Regex, `^spiffe://weft\.local/ns/default/dc/[^/]+/svc/lb$`))
	allowLB := &Engine{Action: Allow, Policies: []Policy{{Name: "from-lb", Permissions: []Permission{AnyPermission()}, Principals: []Principal{lbRegex}}}}
	denyLB := &Engine{Action: Deny, Policies: allowLB.Policies}
	allowAllButLB := &Engine{Action: Allow, Policies: []Policy{{Name: "all-but-lb", Permissions: []Permission{AnyPermission()},
		Principals: []Principal{AndIDs(Authenticated(str(match.Prefix, "spiffe://weft.local/")), NotID(OrIDs(lbRegex)))}}}}
	onPort := &Engine{Action: Allow, Policies: []Policy{{Name: "port", Permissions: []Permission{DestinationPort(21000)}, Principals: []Principal{AnyPrincipal()}}}}
	httpOnly := &Engine{Action: Allow, Policies: []Policy{{Name: "path", Permissions: []Permission{URLPath(match.MustString(match.Prefix, "/", false))}, Principals: []Principal{AnyPrincipal()}}}}
	tests := []struct {
		name   string
		e      *Engine
		r      *Request
		want   bool
		policy string
	}{
		{"nil engine allows", nil, peer(web), true, ""},
		{"empty ALLOW denies all", &Engine{Action: Allow}, peer(web), false, ""},
		{"empty DENY allows all", &Engine{Action: Deny}, peer(web), true, ""},
		{"allow lb: lb", allowLB, peer(lb), true, "from-lb"},
		{"allow lb: web", allowLB, peer(web), false, ""},
		{"allow lb: unauthenticated", allowLB, &Request{}, false, ""},
		{"deny lb: lb", denyLB, peer(lb), false, "from-lb"},
		{"deny lb: web", denyLB, peer(web), true, ""},
		{"and/not/or: web", allowAllButLB, peer(web), true, "all-but-lb"},
		{"and/not/or: lb", allowAllButLB, peer(lb), false, ""},
		{"and/not/or: other trust domain", allowAllButLB, peer("spiffe://evil.local/ns/default/dc/dc1/svc/web"), false, ""},
		{"destination port", onPort, peer(web), true, "port"},
		{"other destination port", onPort, &Request{Authenticated: true, Peer: web, DestinationPort: 1}, false, ""},
		{"url_path never matches a connection", httpOnly, peer(web), false, ""},
		{"authenticated without a name: any authenticated peer", &Engine{Policies: []Policy{{Permissions: []Permission{AnyPermission()}, Principals: []Principal{Authenticated(nil)}}}}, peer(web), true, ""},
		{"authenticated without a name: unauthenticated", &Engine{Policies: []Policy{{Permissions: []Permission{AnyPermission()}, Principals: []Principal{Authenticated(nil)}}}}, &Request{}, false, ""},
		{"zero principal matches nothing", &Engine{Policies: []Policy{{Permissions: []Permission{AnyPermission()}, Principals: []Principal{{}}}}}, peer(web), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, policy := tt.e.Decide(tt.r)
			if got != tt.want || policy != tt.policy {
				t.Errorf("Decide = %v, %q; want %v, %q", got, policy, tt.want, tt.policy)
			}
		})
	}
}

func TestHTTPDecisions(t *testing.T) {
	anyone := []Principal{AnyPrincipal()}
	deny := func(p ...Permission) *Engine {
		return &Engine{Action: Deny, Policies: []Policy{{Name: "p", Permissions: p, Principals: anyone}}}
	}
	hdr := func(h Header) Permission { return HeaderPermission(h) }
	tests := []struct {
		name string
		e    *Engine
		r    *Request
		want bool // allowed
	}{
		{"path prefix denied", deny(URLPath(match.MustString(match.Prefix, "/admin", false))), httpReq(lb, "GET", "/admin/users", nil), false},
		{"other path allowed", deny(URLPath(match.MustString(match.Prefix, "/admin", false))), httpReq(lb, "GET", "/public", nil), true},
		{"path excludes the query", deny(URLPath(match.MustString(match.Exact, "/a", false))), httpReq(lb, "GET", "/a?x=1", nil), false},
		{":method", deny(hdr(Header{Name: ":method", Value: str(match.Exact, "DELETE")})), httpReq(lb, "DELETE", "/", nil), false},
		{":method other", deny(hdr(Header{Name: ":method", Value: str(match.Exact, "DELETE")})), httpReq(lb, "GET", "/", nil), true},
		{":path has the query", deny(hdr(Header{Name: ":path", Value: str(match.Exact, "/a?x=1")})), httpReq(lb, "GET", "/a?x=1", nil), false},
		{":authority", deny(hdr(Header{Name: ":authority", Value: str(match.Exact, "api")})), httpReq(lb, "GET", "http://api/", nil), false},
		{":scheme", deny(hdr(Header{Name: ":scheme", Value: str(match.Exact, "http")})), httpReq(lb, "GET", "/", nil), false},
		{"unknown pseudo header is missing", deny(hdr(Header{Name: ":protocol", Present: true})), httpReq(lb, "GET", "/", nil), true},
		{"header exact", deny(hdr(Header{Name: "X-Env", Value: str(match.Exact, "prod")})), httpReq(lb, "GET", "/", http.Header{"X-Env": {"prod"}}), false},
		{"header values joined by comma", deny(hdr(Header{Name: "x-env", Value: str(match.Exact, "a,b")})), httpReq(lb, "GET", "/", http.Header{"X-Env": {"a", "b"}}), false},
		{"present", deny(hdr(Header{Name: "x-env", Present: true})), httpReq(lb, "GET", "/", http.Header{"X-Env": {""}}), false},
		{"present, missing", deny(hdr(Header{Name: "x-env", Present: true})), httpReq(lb, "GET", "/", nil), true},
		{"present false, missing", deny(hdr(Header{Name: "x-env", Present: false})), httpReq(lb, "GET", "/", nil), false},
		{"inverted present, missing", deny(hdr(Header{Name: "x-env", Present: true, Invert: true})), httpReq(lb, "GET", "/", nil), false},
		{"inverted exact, missing: no match", deny(hdr(Header{Name: "x-env", Value: str(match.Exact, "prod"), Invert: true})), httpReq(lb, "GET", "/", nil), true},
		{"inverted exact, other value", deny(hdr(Header{Name: "x-env", Value: str(match.Exact, "prod"), Invert: true})), httpReq(lb, "GET", "/", http.Header{"X-Env": {"dev"}}), false},
		{"missing as empty", deny(hdr(Header{Name: "x-env", Value: str(match.Exact, ""), TreatMissingAsEmpty: true})), httpReq(lb, "GET", "/", nil), false},
		{"and_rules", deny(AndRules(URLPath(match.MustString(match.Prefix, "/admin", false)), hdr(Header{Name: ":method", Value: str(match.Exact, "POST")}))), httpReq(lb, "GET", "/admin", nil), true},
		{"and_rules both", deny(AndRules(URLPath(match.MustString(match.Prefix, "/admin", false)), hdr(Header{Name: ":method", Value: str(match.Exact, "POST")}))), httpReq(lb, "POST", "/admin", nil), false},
		{"or_rules", deny(OrRules(URLPath(match.MustString(match.Exact, "/x", false)), URLPath(match.MustString(match.Exact, "/y", false)))), httpReq(lb, "GET", "/y", nil), false},
		{"not_rule", deny(NotRule(URLPath(match.MustString(match.Prefix, "/public", false)))), httpReq(lb, "GET", "/private", nil), false},
		{"not_rule public", deny(NotRule(URLPath(match.MustString(match.Prefix, "/public", false)))), httpReq(lb, "GET", "/public/x", nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Allowed(tt.r); got != tt.want {
				t.Errorf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSchemeHTTPS(t *testing.T) {
	r := httpReq(lb, "GET", "/", nil)
	r.HTTP.TLS = &tls.ConnectionState{}
	e := &Engine{Action: Deny, Policies: []Policy{{Permissions: []Permission{HeaderPermission(Header{Name: ":scheme", Value: str(match.Exact, "https")})}, Principals: []Principal{AnyPrincipal()}}}}
	if e.Allowed(r) {
		t.Error(":scheme https over TLS was not matched")
	}
}

func TestAllowedByAll(t *testing.T) {
	allow := &Engine{Action: Deny}
	deny := &Engine{Action: Allow}
	if !AllowedByAll(nil, peer(web)) || !AllowedByAll([]*Engine{allow, allow}, peer(web)) || AllowedByAll([]*Engine{allow, deny}, peer(web)) {
		t.Error("AllowedByAll does not require every engine to allow")
	}
}

// TestDecideDoesNotAllocate: a decision allocates nothing of its own.
// The principal is matched by suffix, not by a regular expression:
// regexp keeps its matching machines in a sync.Pool, which the race
// detector (make test runs -race) empties at random, so a regex match
// allocates there now and then whatever Decide does.
func TestDecideDoesNotAllocate(t *testing.T) {
	e := &Engine{Action: Deny, Policies: []Policy{{Name: "p",
		Permissions: []Permission{AndRules(URLPath(match.MustString(match.Prefix, "/admin", false)), HeaderPermission(Header{Name: "x-env", Value: str(match.Exact, "prod")}))},
		Principals:  []Principal{Authenticated(str(match.Suffix, "/svc/lb"))}}}}
	r := httpReq(lb, "GET", "/admin/x", http.Header{"X-Env": {"prod"}})
	if n := testing.AllocsPerRun(100, func() { e.Allowed(r) }); n != 0 {
		t.Errorf("Allowed allocates %v times", n)
	}
}
