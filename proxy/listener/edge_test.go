package listener

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/rbac"
)

func TestStripMeshHeaders(t *testing.T) {
	h := http.Header{
		"X-Weft-Error":            {"forged"},
		"X-Weft-Trace-Force":      {"1"},
		"X-Forwarded-Client-Cert": {"By=x;URI=y"},
		"X-Weftish":               {"kept"},
		"Accept":                  {"*/*"},
	}
	stripMeshHeaders(h)
	if len(h) != 2 || h.Get("X-Weftish") != "kept" || h.Get("Accept") != "*/*" {
		t.Errorf("after stripping: %v", h)
	}
}

func TestNormalizePathRewritesTheRequest(t *testing.T) {
	tests := []struct{ target, wantPath, wantURI string }{
		{"/a/../b%2Fc?x=1#frag", "/b/c", "/b/c?x=1"},
		{"/caf%C3%A9//x", "/caf%C3%A9/x", "/caf%C3%A9/x"},
		{"/plain", "/plain", "/plain"},
		{"/q?a=1#f", "/q", "/q?a=1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "http://x"+tt.target, nil)
		got, ok := normalizePath(r)
		if !ok || got != tt.wantPath || r.URL.RequestURI() != tt.wantURI {
			t.Errorf("%s: normalized %q (%v), request URI %q; want %q, %q", tt.target, got, ok, r.URL.RequestURI(), tt.wantPath, tt.wantURI)
		}
	}
}

// TestEdgeDoesNotAllocate: the per-request work of the inbound edge on a
// normal path costs no allocation.
func TestEdgeDoesNotAllocate(t *testing.T) {
	lb := match.MustString(match.Exact, lbID, false)
	cfg := &config.HTTP{RBAC: []*rbac.Engine{{Action: rbac.Deny, Policies: []rbac.Policy{{Name: "p",
		Permissions: []rbac.Permission{rbac.URLPath(match.MustString(match.Prefix, "/admin", false))},
		Principals:  []rbac.Principal{rbac.Authenticated(&lb)}}}}}}
	h := &httpHandler{b: &bound{}}
	c := &connInfo{who: rbac.Request{Authenticated: true, Peer: webID}}
	r := httptest.NewRequest("GET", "/api/v1/users?x=1", nil)
	r.Header.Set("Accept", "*/*")
	n := testing.AllocsPerRun(100, func() {
		path, _ := normalizePath(r)
		stripMeshHeaders(r.Header)
		if !h.authorized(cfg, c, r, path) {
			t.Fatal("denied")
		}
	})
	if n != 0 {
		t.Errorf("inbound edge allocates %v times per request", n)
	}
}
