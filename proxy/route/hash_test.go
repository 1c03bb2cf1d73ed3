package route

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestComputeHash(t *testing.T) {
	r := httptest.NewRequest("GET", "/?user=u1", nil)
	r.Header.Set("X-User", "alice")
	r.AddCookie(&http.Cookie{Name: "session", Value: "s1"})
	h := func(s string) uint64 { return xxhash.Sum64String(s) }
	rotl := func(x uint64) uint64 { return x<<1 | x>>63 }
	tests := []struct {
		name     string
		policies []HashPolicy
		want     uint64
		wantOK   bool
	}{
		{"header", []HashPolicy{{Kind: HashHeader, Name: "X-User"}}, h("alice"), true},
		{"missing header", []HashPolicy{{Kind: HashHeader, Name: "X-Other"}}, 0, false},
		{"cookie", []HashPolicy{{Kind: HashCookie, Name: "session"}}, h("s1"), true},
		{"query", []HashPolicy{{Kind: HashQuery, Name: "user"}}, h("u1"), true},
		{"source ip", []HashPolicy{{Kind: HashSourceIP}}, h("10.1.2.3"), true},
		{"combined", []HashPolicy{{Kind: HashHeader, Name: "X-User"}, {Kind: HashQuery, Name: "user"}}, rotl(h("alice")) ^ h("u1"), true},
		{"terminal stops", []HashPolicy{{Kind: HashHeader, Name: "X-User", Terminal: true}, {Kind: HashQuery, Name: "user"}}, h("alice"), true},
		{"terminal without a hash goes on", []HashPolicy{{Kind: HashHeader, Name: "X-Other", Terminal: true}, {Kind: HashQuery, Name: "user"}}, h("u1"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ComputeHash(tt.policies, r, "10.1.2.3")
			if got.OK != tt.wantOK || got.Hash != tt.want || got.SetCookie != nil {
				t.Errorf("ComputeHash = %+v, want hash %x ok %v", got, tt.want, tt.wantOK)
			}
		})
	}
}

func TestHeaderHashIgnoresValueOrder(t *testing.T) {
	a, b := httptest.NewRequest("GET", "/", nil), httptest.NewRequest("GET", "/", nil)
	a.Header["X-K"] = []string{"1", "2"}
	b.Header["X-K"] = []string{"2", "1"}
	p := []HashPolicy{{Kind: HashHeader, Name: "X-K"}}
	if ComputeHash(p, a, "").Hash != ComputeHash(p, b, "").Hash {
		t.Error("header hash depends on value order")
	}
}

func TestCookieGeneratedWhenAbsent(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	p := []HashPolicy{{Kind: HashCookie, Name: "sticky", HasCookieTTL: true, CookieTTL: time.Hour, CookiePath: "/app"}}
	got := ComputeHash(p, r, "")
	c := got.SetCookie
	if !got.OK || c == nil || c.Name != "sticky" || c.Path != "/app" || c.MaxAge != 3600 || !c.HttpOnly || c.Value == "" {
		t.Fatalf("ComputeHash = %+v cookie %+v, want a hash and a generated cookie", got, c)
	}
	if got.Hash != xxhash.Sum64String(c.Value) {
		t.Error("hash is not the generated cookie's")
	}
	// The next request carrying the cookie hashes the same.
	r.AddCookie(&http.Cookie{Name: "sticky", Value: c.Value})
	if again := ComputeHash(p, r, ""); again.Hash != got.Hash || again.SetCookie != nil {
		t.Errorf("with the cookie: %+v, want the same hash and no new cookie", again)
	}
	session := ComputeHash([]HashPolicy{{Kind: HashCookie, Name: "s", HasCookieTTL: true}}, httptest.NewRequest("GET", "/", nil), "")
	if session.SetCookie == nil || session.SetCookie.MaxAge != 0 {
		t.Errorf("ttl 0: cookie %+v, want a session cookie", session.SetCookie)
	}
	if none := ComputeHash([]HashPolicy{{Kind: HashCookie, Name: "s"}}, httptest.NewRequest("GET", "/", nil), ""); none.OK || none.SetCookie != nil {
		t.Errorf("no ttl: %+v, want no hash and no cookie", none)
	}
}
