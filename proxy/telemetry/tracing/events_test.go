package tracing

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// events renders a span's events as "name key=value…" maps.
func events(s tracetest.SpanStub) []map[string]string {
	var out []map[string]string
	for _, e := range s.Events {
		m := attrMap(e.Attributes)
		m["event"] = e.Name
		out = append(out, m)
	}
	return out
}

// TestEvents: a retried request's attempts (the failed first one, the
// retry whatever its outcome), a timeout, a breaker opening, ejected
// hosts and a local reply become span events; a first attempt that
// succeeded adds none.
func TestEvents(t *testing.T) {
	mp := newMemProviders(t)
	tr := mp.acquire(t, "web", 1)
	r := newRequest(http.MethodGet, "http://127.0.0.1:9191/items/42", nil)
	_, span := tr.StartClient(r.Context(), r, Attrs{PeerService: "api", ServerAddress: "api"})
	span.HostsEjected(1, 1)
	span.AttemptEnded(Attempt{N: 1, Host: "10.0.0.1:21000", Instance: "api-1", GRPCStatus: -1, Failure: "upstream_timeout"})
	span.TimedOut("per_try", 1)
	span.AttemptEnded(Attempt{N: 2, Host: "10.0.0.2:21000", Instance: "api-2", Status: 503, GRPCStatus: 14})
	span.BreakerOpened("10.0.0.2:21000", "api-2")
	span.AttemptEnded(Attempt{N: 3, Host: "10.0.0.3:21000", Status: 200, GRPCStatus: -1})
	span.LocalReply("circuit_open", 503)
	span.End(Result{Status: 200, Attempts: 3})

	want := []map[string]string{
		{"event": "outlier_ejection", "weft.outlier.ejected_hosts": "1", "weft.attempt": "1"},
		{"event": "upstream_attempt", "weft.attempt": "1", "weft.upstream.address": "10.0.0.1:21000", "weft.upstream.instance_id": "api-1", "error.type": "upstream_timeout"},
		{"event": "timeout", "weft.timeout": "per_try", "weft.attempt": "1"},
		{"event": "upstream_attempt", "weft.attempt": "2", "weft.upstream.address": "10.0.0.2:21000", "weft.upstream.instance_id": "api-2",
			"http.response.status_code": "503", "rpc.grpc.status_code": "14"},
		{"event": "breaker_open", "weft.upstream.address": "10.0.0.2:21000", "weft.upstream.instance_id": "api-2"},
		{"event": "upstream_attempt", "weft.attempt": "3", "weft.upstream.address": "10.0.0.3:21000", "http.response.status_code": "200"},
		{"event": "local_reply", "weft.error": "circuit_open", "http.response.status_code": "503"},
	}
	if diff := cmp.Diff(want, events(flushed(t, tr, mp.exporter(0))[0])); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	_, span = tr.StartClient(r.Context(), r, Attrs{})
	span.AttemptEnded(Attempt{N: 1, Host: "10.0.0.1:21000", Status: 200, GRPCStatus: -1})
	span.End(Result{Status: 200, Attempts: 1})
	spans := flushed(t, tr, mp.exporter(0))
	if got := spans[len(spans)-1]; len(got.Events) != 0 {
		t.Errorf("a first attempt that succeeded recorded %v", events(got))
	}
}

// TestSpanNames: "METHOD route", with a method HTTP defines, else HTTP
// (and _OTHER); gRPC spans keep the RPC's name; no route, the method.
func TestSpanNames(t *testing.T) {
	tests := []struct {
		name, route string
		req         *http.Request
		want        string
		wantMethod  string
	}{
		{"routed", "/items/*", newRequest("DELETE", "http://api/items/42", nil), "DELETE /items/*", "DELETE"},
		{"no route matched", "", newRequest("GET", "http://api/items/42", nil), "GET", "GET"},
		{"a method of its own", "/*", newRequest("BREW", "http://api/pot", nil), "HTTP /*", "_OTHER"},
		{"gRPC", "/*", grpcRequest("/shop.Cart/Add"), "shop.Cart/Add", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := newMemProviders(t)
			tr := mp.acquire(t, "api", 1)
			_, span := tr.StartServer(tt.req.Context(), tt.req, Attrs{})
			span.SetRoute(tt.route)
			span.End(Result{Status: 200})
			s := flushed(t, tr, mp.exporter(0))[0]
			attrs := attrMap(s.Attributes)
			if s.Name != tt.want || attrs["http.request.method"] != tt.wantMethod || attrs["http.route"] != tt.route {
				t.Errorf("name %q, http.request.method %q, http.route %q; want %q, %q, %q",
					s.Name, attrs["http.request.method"], attrs["http.route"], tt.want, tt.wantMethod, tt.route)
			}
		})
	}
}

// TestUnsampledSpansCostNothing: what the request path calls on a span
// that does not record allocates nothing.
func TestUnsampledSpansCostNothing(t *testing.T) {
	mp := newMemProviders(t)
	tr := mp.acquire(t, "web", 0)
	r := newRequest(http.MethodGet, "http://127.0.0.1:9191/items/42", nil)
	ctx := r.Context()
	_, span := tr.StartClient(ctx, r, Attrs{PeerService: "api", ServerAddress: "api"})
	if span.IsRecording() {
		t.Fatal("sampled at ratio 0")
	}
	allocs := testing.AllocsPerRun(100, func() {
		span.SetRoute("/items/*")
		span.HostsEjected(1, 1)
		span.AttemptEnded(Attempt{N: 2, Host: "10.0.0.1:21000", Status: 503, GRPCStatus: -1})
		span.TimedOut("route", 2)
		span.BreakerOpened("10.0.0.1:21000", "api-1")
		span.LocalReply("upstream_timeout", 504)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per unsampled request's events, want 0", allocs)
	}
}
