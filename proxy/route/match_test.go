package route

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/weft-mesh/weft/proxy/match"
)

func str(t *testing.T, kind match.Kind, v string) match.String {
	t.Helper()
	m, err := match.NewString(kind, v, false)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatchHeadersAndQuery(t *testing.T) {
	get := func(target string, headers ...string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest("GET", target, nil)
			for i := 0; i < len(headers); i += 2 {
				r.Header.Add(headers[i], headers[i+1])
			}
			return r
		}
	}
	post := func() *http.Request { return httptest.NewRequest("POST", "/", nil) }
	tests := []struct {
		name  string
		match Match
		req   func() *http.Request
		want  bool
	}{
		{"exact header", Match{Headers: []HeaderMatcher{{Name: "x-canary", String: str(t, match.Exact, "1")}}}, get("/", "X-Canary", "1"), true},
		{"exact header mismatch", Match{Headers: []HeaderMatcher{{Name: "x-canary", String: str(t, match.Exact, "1")}}}, get("/", "X-Canary", "2"), false},
		{"missing header fails a string match", Match{Headers: []HeaderMatcher{{Name: "x-canary", String: str(t, match.Exact, "1")}}}, get("/"), false},
		{"missing header fails an inverted string match too", Match{Headers: []HeaderMatcher{{Name: "x-canary", String: str(t, match.Exact, "1"), Invert: true}}}, get("/"), false},
		{"inverted string match", Match{Headers: []HeaderMatcher{{Name: "x-canary", String: str(t, match.Exact, "1"), Invert: true}}}, get("/", "X-Canary", "2"), true},
		{"missing as empty", Match{Headers: []HeaderMatcher{{Name: "x-canary", String: str(t, match.Exact, ""), MissingAsEmpty: true}}}, get("/"), true},
		{"several values joined", Match{Headers: []HeaderMatcher{{Name: "x-v", String: str(t, match.Exact, "a,b")}}}, get("/", "X-V", "a", "X-V", "b"), true},
		{"prefix", Match{Headers: []HeaderMatcher{{Name: "x-user", String: str(t, match.Prefix, "adm")}}}, get("/", "X-User", "admin"), true},
		{"suffix", Match{Headers: []HeaderMatcher{{Name: "x-user", String: str(t, match.Suffix, "min")}}}, get("/", "X-User", "admin"), true},
		{"regex", Match{Headers: []HeaderMatcher{{Name: "x-user", String: str(t, match.Regex, "a.*n")}}}, get("/", "X-User", "admin"), true},
		{"present", Match{Headers: []HeaderMatcher{{Name: "x-debug", Kind: HeaderPresent, Present: true}}}, get("/", "X-Debug", ""), true},
		{"present missing", Match{Headers: []HeaderMatcher{{Name: "x-debug", Kind: HeaderPresent, Present: true}}}, get("/"), false},
		{"absent", Match{Headers: []HeaderMatcher{{Name: "x-debug", Kind: HeaderPresent, Present: false}}}, get("/"), true},
		{"inverted present", Match{Headers: []HeaderMatcher{{Name: "x-debug", Kind: HeaderPresent, Present: true, Invert: true}}}, get("/"), true},
		{"range", Match{Headers: []HeaderMatcher{{Name: "x-n", Kind: HeaderRange, Start: 10, End: 20}}}, get("/", "X-N", "15"), true},
		{"range end excluded", Match{Headers: []HeaderMatcher{{Name: "x-n", Kind: HeaderRange, Start: 10, End: 20}}}, get("/", "X-N", "20"), false},
		{":method", Match{Headers: []HeaderMatcher{{Name: ":method", String: str(t, match.Regex, "GET|HEAD")}}}, get("/"), true},
		{":method mismatch", Match{Headers: []HeaderMatcher{{Name: ":method", String: str(t, match.Regex, "GET|HEAD")}}}, post, false},
		{"all headers must hold", Match{Headers: []HeaderMatcher{
			{Name: "x-a", Kind: HeaderPresent, Present: true}, {Name: "x-b", Kind: HeaderPresent, Present: true}}}, get("/", "X-A", "1"), false},
		{"query exact", Match{Query: []QueryMatcher{{Name: "v", String: str(t, match.Exact, "2")}}}, get("/?a=1&v=2"), true},
		{"query first value", Match{Query: []QueryMatcher{{Name: "v", String: str(t, match.Exact, "2")}}}, get("/?v=1&v=2"), false},
		{"query not decoded", Match{Query: []QueryMatcher{{Name: "q", String: str(t, match.Exact, "a%20b")}}}, get("/?q=a%20b"), true},
		{"query present", Match{Query: []QueryMatcher{{Name: "debug", PresentOnly: true}}}, get("/?debug"), true},
		{"query missing", Match{Query: []QueryMatcher{{Name: "debug", PresentOnly: true}}}, get("/?x=1"), false},
		{"query regex", Match{Query: []QueryMatcher{{Name: "id", String: str(t, match.Regex, "[0-9]+")}}}, get("/?id=42"), true},
		{"grpc", Match{GRPC: true}, get("/", "Content-Type", "application/grpc+proto"), true},
		{"not grpc", Match{GRPC: true}, get("/", "Content-Type", "application/grpcx"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.match.Path = PathMatch{Kind: Prefix, Value: "/"}
			r := tt.req()
			if got := tt.match.matches(r, r.URL.Path); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}
