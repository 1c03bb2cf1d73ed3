package router

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/weft-mesh/weft/proxy/route"
)

// TestDirectResponse: a route with a direct response answers with its
// status and body and its response header changes, reaching no upstream;
// its request header changes do not matter.
func TestDirectResponse(t *testing.T) {
	e := newEnv(t)
	var hits atomic.Int32
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1); io.WriteString(w, "upstream") })))
	deny := route.Route{
		Match:           route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: "/private"}},
		Action:          route.Action{Direct: &route.DirectResponse{Status: 403, Body: []byte("refused\n")}},
		RequestHeaders:  route.Mutation{Add: []route.HeaderValue{{Key: "X-To-Upstream", Value: "1"}}},
		ResponseHeaders: route.Mutation{Add: []route.HeaderValue{{Key: "X-Route", Value: "deny"}}},
	}
	empty := route.Route{
		Match:  route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: "/gone"}},
		Action: route.Action{Direct: &route.DirectResponse{Status: 410}},
	}
	e.routes(deny, empty, to("c"))
	tests := []struct {
		method, path string
		want         response
	}{
		{"GET", "/private/x", response{403, http.Header{"Content-Type": {"text/plain"}, "X-Route": {"deny"}, "X-Weft-Error": {"direct_response"}}, "refused\n"}},
		{"HEAD", "/private/x", response{403, http.Header{"Content-Type": {"text/plain"}, "X-Route": {"deny"}, "X-Weft-Error": {"direct_response"}}, ""}},
		{"POST", "/gone", response{410, http.Header{"X-Weft-Error": {"direct_response"}}, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+e.addr+tt.path, nil)
			got := e.do(req)
			if got.code != tt.want.code || got.body != tt.want.body {
				t.Errorf("got %d %q, want %d %q", got.code, got.body, tt.want.code, tt.want.body)
			}
			for _, k := range []string{"Content-Type", "X-Route", "X-Weft-Error"} {
				if got.header.Get(k) != tt.want.header.Get(k) {
					t.Errorf("header %s = %q, want %q", k, got.header.Get(k), tt.want.header.Get(k))
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the upstream got %d requests of direct-response routes, want none", n)
	}
	if got := e.get("/other"); got.body != "upstream" || hits.Load() != 1 {
		t.Errorf("the route after them: %d %q, want the upstream's answer", got.code, got.body)
	}
}
