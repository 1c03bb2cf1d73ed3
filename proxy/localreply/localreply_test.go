package localreply

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		reason Reason
		status int
	}{
		{NoRoute, 404}, {NoHealthyUpstream, 503}, {CircuitOpen, 503}, {Overflow, 503},
		{UpstreamTimeout, 504}, {UpstreamReset, 503}, {ConnectFailure, 503}, {PeerUnreachable, 503}, {NoExportedService, 503},
		{RBACDenied, 403}, {InvalidPath, 400}, {TooManyHeaders, 431}, {HeadersTooLarge, 431},
	}
	for _, tt := range tests {
		t.Run(string(tt.reason), func(t *testing.T) {
			w := httptest.NewRecorder()
			Write(w, httptest.NewRequest("GET", "/", nil), tt.reason, "api.default.dc1")
			var b body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status || w.Header().Get(Header) != string(tt.reason) || b.Error != tt.reason || b.Upstream != "api.default.dc1" {
				t.Errorf("got %d %q %+v", w.Code, w.Header().Get(Header), b)
			}
		})
	}
}

// TestWriteGRPCPeerReasons: a gRPC call to a peer's service that could
// not reach it is UNAVAILABLE, as a connect failure is.
func TestWriteGRPCPeerReasons(t *testing.T) {
	for _, reason := range []Reason{PeerUnreachable, NoExportedService} {
		r := httptest.NewRequest("POST", "/pkg.Svc/Method", nil)
		r.Header.Set("Content-Type", "application/grpc")
		w := httptest.NewRecorder()
		Write(w, r, reason, "api.default.default.dc2.peer")
		h := w.Header()
		if w.Code != http.StatusOK || h.Get("Grpc-Status") != "14" || h.Get(Header) != string(reason) ||
			h.Get("Grpc-Message") != "weft-proxy: "+string(reason)+" (upstream api.default.default.dc2.peer)" {
			t.Errorf("%s: gRPC local reply: %d %v", reason, w.Code, h)
		}
	}
}

func TestWriteGRPC(t *testing.T) {
	r := httptest.NewRequest("POST", "/pkg.Svc/Method", nil)
	r.Header.Set("Content-Type", "application/grpc")
	w := httptest.NewRecorder()
	Write(w, r, UpstreamTimeout, "api")
	h := w.Header()
	if w.Code != http.StatusOK || h.Get("Grpc-Status") != "4" || h.Get(Header) != "upstream_timeout" ||
		h.Get("Grpc-Message") != "weft-proxy: upstream_timeout (upstream api)" || w.Body.Len() != 0 {
		t.Errorf("gRPC local reply: %d %v body %q", w.Code, h, w.Body.String())
	}
}

// TestKnownListsEveryReason: Known (metrics' bound on the reason label)
// knows every Reason constant of this package, read from its source, and
// nothing else.
func TestKnownListsEveryReason(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "localreply.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []Reason
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Reason" {
					v, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
					declared = append(declared, Reason(v))
				}
			}
		}
	}
	if diff := cmp.Diff(declared, reasons[:]); diff != "" {
		t.Errorf("reasons is not the Reason constants (-constants +reasons):\n%s", diff)
	}
	for _, r := range declared {
		if got, ok := Known(string(r)); !ok || got != r {
			t.Errorf("Known(%q) = %q, %v; want it known", r, got, ok)
		}
	}
	if slices.ContainsFunc([]string{"", "other", "No_Route", "no_route "}, func(s string) bool { _, ok := Known(s); return ok }) {
		t.Error("Known knows a reason the sidecar never generates")
	}
}

func TestWriteDirect(t *testing.T) {
	grpc := func() *http.Request {
		r := httptest.NewRequest("POST", "/pkg.Svc/Method", nil)
		r.Header.Set("Content-Type", "application/grpc")
		return r
	}
	tests := []struct {
		name       string
		req        *http.Request
		status     int
		body       string
		wantStatus int
		wantHeader http.Header
		wantBody   string
	}{
		{"status and body", httptest.NewRequest("GET", "/", nil), 403, "refused\n", 403,
			http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"8"}, "X-Weft-Error": {"direct_response"}, "X-Route": {"kept"}}, "refused\n"},
		{"no body, no content type", httptest.NewRequest("GET", "/", nil), 503, "", 503,
			http.Header{"Content-Length": {"0"}, "X-Weft-Error": {"direct_response"}, "X-Route": {"kept"}}, ""},
		{"gRPC: trailers-only, the status mapped, the body as message", grpc(), 403, "no JWT: refused", 200,
			http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {"7"}, "Grpc-Message": {"no JWT: refused"}, "X-Weft-Error": {"direct_response"}, "X-Route": {"kept"}}, ""},
		{"gRPC: a status gRPC does not map is UNKNOWN", grpc(), 200, "", 200,
			http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {"2"}, "X-Weft-Error": {"direct_response"}, "X-Route": {"kept"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("X-Route", "kept") // a response header change of the route
			WriteDirect(w, tt.req, tt.status, []byte(tt.body))
			if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tt.wantStatus, tt.wantBody)
			}
			if diff := cmp.Diff(tt.wantHeader, w.Header()); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailure(t *testing.T) {
	if !NoRoute.Failure(404) || !RBACDenied.Failure(403) {
		t.Error("a local reply for a failure is not a failure")
	}
	if DirectResponse.Failure(403) || DirectResponse.Failure(200) || !DirectResponse.Failure(503) {
		t.Error("a direct response is a failure only as a 5xx")
	}
}
