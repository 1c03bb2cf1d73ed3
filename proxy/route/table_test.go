package route

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func mustTable(t *testing.T, vhosts ...VirtualHost) *Table {
	t.Helper()
	tbl, err := NewTable("test", vhosts)
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return tbl
}

func to(cluster string) Action {
	return Action{Clusters: []WeightedCluster{{Name: cluster, Weight: 1}}}
}

func prefix(p, cluster string) Route {
	return Route{Match: Match{Path: PathMatch{Kind: Prefix, Value: p}}, Action: to(cluster)}
}

func req(host, target string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.Host = host
	return r
}

func clusterOf(r *Route) string {
	if r == nil {
		return ""
	}
	return r.Action.Clusters[0].Name
}

func TestVirtualHostSelection(t *testing.T) {
	tbl := mustTable(t,
		VirtualHost{Name: "exact", Domains: []string{"api.example.com", "api.example.com:8080"}, Routes: []Route{prefix("/", "exact")}},
		VirtualHost{Name: "suffix", Domains: []string{"*.example.com"}, Routes: []Route{prefix("/", "suffix")}},
		VirtualHost{Name: "longer-suffix", Domains: []string{"*.eu.example.com"}, Routes: []Route{prefix("/", "longer-suffix")}},
		VirtualHost{Name: "prefix", Domains: []string{"web.*"}, Routes: []Route{prefix("/", "prefix")}},
		VirtualHost{Name: "any", Domains: []string{"*"}, Routes: []Route{prefix("/", "any")}},
	)
	tests := []struct{ host, want string }{
		{"api.example.com", "exact"},
		{"API.Example.COM", "exact"},
		{"api.example.com:8080", "exact"},
		{"api.example.com:9999", "exact"},
		{"x.example.com", "suffix"},
		{"x.eu.example.com", "longer-suffix"},
		{"web.internal", "prefix"},
		{"example.com", "any"},
		{"", "any"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := tbl.Match(req(tt.host, "/"), "/")
			if clusterOf(r) != tt.want {
				t.Errorf("Match(%q) = %+v, want cluster %q", tt.host, r, tt.want)
			}
		})
	}
}

func TestRouteMatching(t *testing.T) {
	re, err := NewRegexMatch(`/users/[0-9]+`)
	if err != nil {
		t.Fatal(err)
	}
	tbl := mustTable(t, VirtualHost{Name: "vh", Domains: []string{"*"}, Routes: []Route{
		{Match: Match{Path: PathMatch{Kind: Path, Value: "/exact"}}, Action: to("path")},
		{Match: Match{Path: PathMatch{Kind: Prefix, Value: "/API/", CaseInsensitive: true}}, Action: to("ci-prefix")},
		{Match: Match{Path: re}, Action: to("regex")},
		{Match: Match{Path: PathMatch{Kind: SeparatedPrefix, Value: "/sep"}}, Action: to("separated")},
		prefix("/static/", "static"),
	}})
	tests := []struct{ path, want string }{
		{"/exact", "path"},
		{"/exact/more", ""},
		{"/api/v1", "ci-prefix"},
		{"/Api/v1", "ci-prefix"},
		{"/users/42", "regex"},
		{"/users/42/x", ""},
		{"/static/a.css", "static"},
		{"/sep", "separated"},
		{"/sep/x", "separated"},
		{"/sepx", ""},
		{"/Static/a.css", ""},
		{"/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := clusterOf(tbl.Match(req("h", tt.path), tt.path)); got != tt.want {
				t.Errorf("Match(%q) cluster = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestNoVirtualHost(t *testing.T) {
	tbl := mustTable(t, VirtualHost{Name: "vh", Domains: []string{"a"}, Routes: []Route{prefix("/", "c")}})
	if r := tbl.Match(req("b", "/"), "/"); r != nil {
		t.Errorf("Match(b) = %+v, want nil", r)
	}
}

func TestNewTableErrors(t *testing.T) {
	tests := []struct {
		name    string
		vhosts  []VirtualHost
		wantErr string
	}{
		{"duplicate domain", []VirtualHost{{Name: "a", Domains: []string{"x"}}, {Name: "b", Domains: []string{"X"}}},
			`virtual host "b": domain "x" is also served by virtual host "a"`},
		{"wildcard in the middle", []VirtualHost{{Name: "a", Domains: []string{"a.*.com"}}},
			`virtual host "a": domain "a.*.com": a wildcard may only be the first or last character`},
		{"empty domain", []VirtualHost{{Name: "a", Domains: []string{""}}}, `virtual host "a": empty domain`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTable("t", tt.vhosts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewTable error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestBadRegex(t *testing.T) {
	if _, err := NewRegexMatch("(("); err == nil || !strings.Contains(err.Error(), `regex "(("`) {
		t.Errorf("NewRegexMatch error = %v, want it to name the regex", err)
	}
}

// TestRouteTemplates: each matched route names a low-cardinality template
// (the span's http.route), never the request's path.
func TestRouteTemplates(t *testing.T) {
	items, _ := NewRegexMatch(`/items/[0-9]+`)
	routes := []Route{
		{Match: Match{Path: PathMatch{Kind: Path, Value: "/health"}}, Action: to("a")},
		{Match: Match{Path: items}, Action: to("a")},
		{Match: Match{Path: PathMatch{Kind: SeparatedPrefix, Value: "/v2"}}, Action: to("a")},
		{Name: "named", Template: "/orders/{id}", Match: Match{Path: PathMatch{Kind: Prefix, Value: "/orders/"}}, Action: to("a")},
		prefix("/api/", "a"),
		prefix("/", "a"),
	}
	tbl := mustTable(t, VirtualHost{Name: "vh", Domains: []string{"*"}, Routes: routes})
	for path, want := range map[string]string{
		"/health":   "/health",
		"/items/42": "/items/[0-9]+",
		"/v2":       "/v2/*",
		"/v2/x/9":   "/v2/*",
		"/orders/7": "/orders/{id}",
		"/api/u/1":  "/api/*",
		"/x/1":      "/*",
	} {
		if got := tbl.Match(req("svc", path), path); got == nil || got.Template != want {
			t.Errorf("%s: matched %+v, want template %q", path, got, want)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	tbl, _ := NewTable("t", []VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: []Route{prefix("/api/", "api"), prefix("/", "root")}}})
	r := req("svc.local:8080", "/x/y")
	b.ReportAllocs()
	for b.Loop() {
		tbl.Match(r, "/x/y")
	}
}
