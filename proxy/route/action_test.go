package route

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPickClusterFollowsWeights(t *testing.T) {
	a := Action{Clusters: []WeightedCluster{{Name: "v1", Weight: 9000}, {Name: "v2", Weight: 1000}, {Name: "off", Weight: 0}}}
	a.Finish()
	got := map[string]int{}
	const n = 100000
	for range n {
		got[a.PickCluster().Name]++
	}
	if share := float64(got["v2"]) / n; share < 0.09 || share > 0.11 {
		t.Errorf("v2 got %.3f of requests, want 0.10 ± 0.01: %v", share, got)
	}
	if got["off"] != 0 {
		t.Errorf("a zero-weight cluster got %d requests", got["off"])
	}
}

func TestRewritePath(t *testing.T) {
	tests := []struct {
		name   string
		action Action
		match  PathMatch
		path   string
		want   string
	}{
		{"prefix", Action{PrefixRewrite: "/v2/", HasPrefixRewrite: true}, PathMatch{Kind: Prefix, Value: "/api/"}, "/api/users", "/v2/users"},
		{"prefix to root", Action{PrefixRewrite: "/", HasPrefixRewrite: true}, PathMatch{Kind: Prefix, Value: "/api/"}, "/api/users", "/users"},
		{"path replaced whole", Action{PrefixRewrite: "/health", HasPrefixRewrite: true}, PathMatch{Kind: Path, Value: "/status"}, "/status", "/health"},
		{"none", Action{}, PathMatch{Kind: Prefix, Value: "/"}, "/x", "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.action.RewritePath(&tt.match, tt.path); got != tt.want {
				t.Errorf("RewritePath(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestHeaderMutationOrder(t *testing.T) {
	set := func(k, v string) Mutation {
		return Mutation{Add: []HeaderValue{{Key: http.CanonicalHeaderKey(k), Value: v, Action: OverwriteIfExistsOrAdd}}}
	}
	for _, mostSpecific := range []bool{false, true} {
		vh := VirtualHost{Name: "vh", Domains: []string{"*"}, RequestHeaders: set("x-level", "vhost"), Routes: []Route{{
			Match:          Match{Path: PathMatch{Kind: Prefix, Value: "/"}},
			Action:         Action{Clusters: []WeightedCluster{{Name: "c", Weight: 1, RequestHeaders: set("x-level", "cluster")}}},
			RequestHeaders: set("x-level", "route"),
		}}}
		tbl, err := New(Config{Name: "t", VirtualHosts: []VirtualHost{vh}, RequestHeaders: set("x-level", "table"), MostSpecificWins: mostSpecific})
		if err != nil {
			t.Fatal(err)
		}
		r := tbl.Match(req("h", "/"), "/")
		h := http.Header{}
		ms := r.RequestMutations(&r.Action.Clusters[0])
		ms.Apply(h)
		want := map[bool]string{false: "table", true: "cluster"}[mostSpecific]
		if got := h.Get("x-level"); got != want {
			t.Errorf("most_specific_header_mutations_wins=%v: x-level = %q, want %q", mostSpecific, got, want)
		}
	}
}

func TestMutationApply(t *testing.T) {
	h := http.Header{"X-Keep": {"1"}, "X-Drop": {"1"}, "X-Append": {"a"}, "X-Set": {"old"}, "X-Absent": {"there"}}
	m := Mutation{
		Remove: []string{"X-Drop"},
		Add: []HeaderValue{
			{Key: "X-Append", Value: "b", Action: AppendIfExistsOrAdd},
			{Key: "X-Set", Value: "new", Action: OverwriteIfExistsOrAdd},
			{Key: "X-Absent", Value: "ignored", Action: AddIfAbsent},
			{Key: "X-New", Value: "n", Action: AddIfAbsent},
			{Key: "X-Only-If", Value: "ignored", Action: OverwriteIfExists},
			{Key: "X-Empty", Value: ""},
			{Key: "X-Kept-Empty", Value: "", KeepEmpty: true},
		},
	}
	m.Apply(h)
	want := http.Header{"X-Keep": {"1"}, "X-Append": {"a", "b"}, "X-Set": {"new"}, "X-Absent": {"there"}, "X-New": {"n"}, "X-Kept-Empty": {""}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

func TestRegexRewrite(t *testing.T) {
	tests := []struct{ pattern, sub, path, want string }{
		{`^/service/([^/]+)(/.*)$`, `\2/instance/\1`, "/service/foo/v1/api", "/v1/api/instance/foo"},
		{`one`, `two`, "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz"},
		{`^(.*?)one(.*)$`, `\1two\2`, "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/one/zzz"},
		{`(?i)/xxx/`, `/yyy/`, "/aaa/XxX/bbb", "/aaa/yyy/bbb"},
		{`x`, `$1`, "/x", "/$1"},
	}
	for _, tt := range tests {
		var a Action
		if err := a.SetRegexRewrite(tt.pattern, tt.sub); err != nil {
			t.Fatal(err)
		}
		if got := a.RewritePath(&PathMatch{Kind: Prefix, Value: "/"}, tt.path); got != tt.want {
			t.Errorf("regex_rewrite %q → %q on %q = %q, want %q", tt.pattern, tt.sub, tt.path, got, tt.want)
		}
	}
}
