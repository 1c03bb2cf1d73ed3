package proxy_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/traces"
)

// tracedGet sends GET path to addr in a trace of its own (a sampled
// caller's traceparent) and returns the trace's ID and the status.
func tracedGet(t *testing.T, addr, path string) (traceID string, code int) {
	t.Helper()
	traceID = fmt.Sprintf("%032x", time.Now().UnixNano())
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := l7Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return traceID, resp.StatusCode
}

// spansOf waits until the collector holds n spans of a trace and returns
// them by service.
func spansOf(t *testing.T, store *traces.Store, traceID string, n int) map[string]traces.Span {
	t.Helper()
	var spans []traces.Span
	poll.UntilTrue(t, wait, fmt.Sprintf("%d spans of trace %s", n, traceID), func() bool {
		spans, _ = store.Trace(traceID)
		return len(spans) >= n
	})
	out := map[string]traces.Span{}
	for _, s := range spans {
		out[s.Service] = s
	}
	return out
}

// eventsOf renders a span's events as maps of their attributes, with the
// event's name under "event", keeping only the keys of want's maps.
func eventsOf(s traces.Span, want []map[string]string) []map[string]string {
	var out []map[string]string
	for i, e := range s.Events {
		m := map[string]string{"event": e.Name}
		if i < len(want) {
			for k := range want[i] {
				if v, ok := e.Attributes[k]; ok {
					m[k] = v
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// checkSpan compares a span's name, the attributes want names (absent:
// "") and its events.
func checkSpan(t *testing.T, what string, s traces.Span, name string, attrs map[string]string, events []map[string]string) {
	t.Helper()
	if s.Name != name {
		t.Errorf("%s: span name %q, want %q", what, s.Name, name)
	}
	got := map[string]string{}
	for k := range attrs {
		got[k] = s.Attributes[k]
	}
	if diff := cmp.Diff(attrs, got); diff != "" {
		t.Errorf("%s: attributes (-want +got):\n%s", what, diff)
	}
	if diff := cmp.Diff(events, eventsOf(s, events)); diff != "" {
		t.Errorf("%s: events (-want +got):\n%s", what, diff)
	}
}

// TestSpansExplainTheRequest: on real requests through a sidecar, the
// client span is named by the matched route, not the path, and says
// which upstream instance served it; a retry shows in the resend count
// and as one event per attempt, with the breaker its failure opened and
// the ejected host its next pick avoided, as later requests' do; a timeout, a host-less cluster
// and a missing route are local replies, traced with their x-weft-error.
func TestSpansExplainTheRequest(t *testing.T) {
	collector, store := startCollector(t)
	var flakyCalls atomic.Int32
	flakySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flakyCalls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(flakySrv.Close)
	flaky := strings.TrimPrefix(flakySrv.URL, "http://")
	good := namedBackend(t, "good")
	items := xdstest.ToCluster("api")
	items.RetryPolicy = &routev3.RetryPolicy{RetryOn: "retriable-status-codes", RetriableStatusCodes: []uint32{503}, NumRetries: wrapperspb.UInt32(2)}
	slow := xdstest.ToCluster("slow")
	slow.Timeout = durationpb.New(200 * time.Millisecond)
	rc := xdstest.Routes("api",
		xdstest.Route(xdstest.Prefix("/items/"), items),
		xdstest.Route(xdstest.Prefix("/slow"), slow),
		xdstest.Route(xdstest.Prefix("/down"), xdstest.ToCluster("down")))
	x := startTracedL7(t, collector, rc,
		[]*clusterv3.Cluster{xdstest.WithOutlierDetection(eds("api"), 1, 100, time.Minute), eds("slow"), eds("down")},
		xdstest.LoadAssignment("api", xdstest.WithInstanceID(xdstest.Endpoint(flaky), "api-1-sidecar-proxy"), xdstest.WithInstanceID(xdstest.Endpoint(good), "api-2-sidecar-proxy")),
		xdstest.LoadAssignment("slow", xdstest.WithInstanceID(xdstest.Endpoint(testnet.BlackHole(t)), "slow-1-sidecar-proxy")),
		xdstest.LoadAssignment("down"))

	t.Run("a retry, and the breaker it opened", func(t *testing.T) {
		// Round robin: the first or the second request tries the flaky
		// host first, fails, ejects it and is retried on the good one.
		var retried traces.Span
		for flakyCalls.Load() == 0 {
			id, code := tracedGet(t, x.addr, "/items/42")
			if code != 200 {
				t.Fatalf("GET /items/42: %d, want 200 (retried if need be)", code)
			}
			retried = spansOf(t, store, id, 1)["web"]
		}
		checkSpan(t, "retried request", retried, "GET /items/*", map[string]string{
			"http.request.method":       "GET",
			"url.path":                  "/items/42",
			"http.route":                "/items/*",
			"http.response.status_code": "200",
			"http.request.resend_count": "1",
			"server.address":            "api",
			"peer.service":              "api",
			"weft.upstream.address":     good,
			"weft.upstream.instance_id": "api-2-sidecar-proxy",
			"network.peer.address":      "127.0.0.1",
			"network.peer.port":         good[strings.LastIndex(good, ":")+1:],
			"weft.error":                "",
		}, []map[string]string{
			{"event": "upstream_attempt", "weft.attempt": "1", "weft.upstream.instance_id": "api-1-sidecar-proxy", "http.response.status_code": "503"},
			{"event": "breaker_open", "weft.upstream.address": flaky, "weft.upstream.instance_id": "api-1-sidecar-proxy"},
			{"event": "outlier_ejection", "weft.attempt": "2", "weft.outlier.ejected_hosts": "1"}, // the retry picks without it
			{"event": "upstream_attempt", "weft.attempt": "2", "weft.upstream.instance_id": "api-2-sidecar-proxy", "http.response.status_code": "200"},
		})
		if retried.Error {
			t.Error("a request that succeeded on retry is marked as an error")
		}

		id, _ := tracedGet(t, x.addr, "/items/43")
		checkSpan(t, "request after the ejection", spansOf(t, store, id, 1)["web"], "GET /items/*", map[string]string{
			"http.request.resend_count": "", "weft.upstream.instance_id": "api-2-sidecar-proxy",
		}, []map[string]string{{"event": "outlier_ejection", "weft.outlier.ejected_hosts": "1"}})
	})

	for _, tt := range []struct {
		path, name, reason string
		code               int
		attrs              map[string]string
		events             []map[string]string
	}{
		{"/slow/1", "GET /slow*", "upstream_timeout", 504, map[string]string{"http.route": "/slow*", "weft.upstream.instance_id": "slow-1-sidecar-proxy"}, []map[string]string{
			{"event": "upstream_attempt", "weft.attempt": "1", "error.type": "upstream_timeout"},
			{"event": "timeout", "weft.timeout": "route"},
			{"event": "local_reply", "weft.error": "upstream_timeout", "http.response.status_code": "504"},
		}},
		{"/down", "GET /down*", "no_healthy_upstream", 503, map[string]string{"http.route": "/down*"}, []map[string]string{
			{"event": "local_reply", "weft.error": "no_healthy_upstream"},
		}},
		{"/nowhere", "GET", "no_route", 404, map[string]string{"http.route": ""}, []map[string]string{
			{"event": "local_reply", "weft.error": "no_route", "http.response.status_code": "404"},
		}},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			id, code := tracedGet(t, x.addr, tt.path)
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d", tt.path, code, tt.code)
			}
			tt.attrs["weft.error"], tt.attrs["error.type"] = tt.reason, tt.reason
			tt.attrs["url.path"] = tt.path
			s := spansOf(t, store, id, 1)["web"]
			checkSpan(t, tt.path, s, tt.name, tt.attrs, tt.events)
			if !s.Error {
				t.Errorf("%s: span not marked as an error", tt.path)
			}
		})
	}
}

// TestInboundSpansNameTheCaller: over mTLS, the server span names the
// caller's verified SPIFFE ID and address, both sidecars name the route,
// web's span the upstream instance; each hop's access-log line carries
// the trace and that hop's span. A request an intention denies is the
// upstream sidecar's local reply, rbac_denied on both spans.
func TestInboundSpansNameTheCaller(t *testing.T) {
	collector, store := startCollector(t)
	logs, lines := accessLogs(t)
	m := newMeshTest(t, meshOptions{collector: collector, accessLogs: logs})
	addr := m.webAddr(webToAPI)

	id, code := tracedGet(t, addr, "/items/42")
	if code != 200 {
		t.Fatalf("GET /items/42: %d", code)
	}
	spans := spansOf(t, store, id, 2)
	web, api := spans["web"], spans["api"]
	checkSpan(t, "web", web, "GET /*", map[string]string{
		"url.path": "/items/42", "http.route": "/*", "server.address": "api", "peer.service": "api",
		"weft.upstream.address": m.relay.addr, "weft.upstream.instance_id": apiNode, "weft.peer.spiffe_id": "",
	}, nil)
	checkSpan(t, "api", api, "GET /*", map[string]string{
		"url.path": "/items/42", "http.route": "/*", "peer.service": "web",
		"weft.peer.spiffe_id": serviceID(t, "web"), "network.peer.address": "127.0.0.1",
		"weft.upstream.address": m.app.addr, "weft.upstream.instance_id": "",
	}, nil)

	// Item 6: a log line leads to its trace, a trace to each hop's line.
	for node, span := range map[string]traces.Span{webNode: web, apiNode: api} {
		logs[node].Close() // flushes
		var found []accesslog.Entry
		for _, e := range lines[node].entries(t) {
			if hex.EncodeToString(e.TraceID[:]) == id {
				found = append(found, e)
			}
		}
		if len(found) != 1 || hex.EncodeToString(found[0].SpanID[:]) != span.SpanID || found[0].Path != "/items/42" {
			t.Errorf("%s: access-log lines of trace %s: %+v; want one, with span_id %s", node, id, found, span.SpanID)
		}
	}

	m.mu.Lock()
	m.l7Deny = xdstest.Policy([]*rbacv3.Permission{xdstest.PathPrefix("/admin")}, xdstest.Principal(serviceID(t, "web")))
	m.mu.Unlock()
	v := m.publishAPI()
	poll.UntilTrue(t, wait, "the L7 deny", func() bool { return m.api.xdsStatus().Types[resourcev3.ListenerType].Version == v })
	id, code = tracedGet(t, addr, "/admin/users")
	if code != http.StatusForbidden {
		t.Fatalf("GET /admin/users: %d, want 403", code)
	}
	spans = spansOf(t, store, id, 2)
	checkSpan(t, "api, denying", spans["api"], "GET", map[string]string{
		"weft.error": "rbac_denied", "weft.peer.spiffe_id": serviceID(t, "web"), "http.response.status_code": "403",
	}, []map[string]string{{"event": "local_reply", "weft.error": "rbac_denied"}})
	checkSpan(t, "web, denied", spans["web"], "GET /*", map[string]string{
		"weft.error": "rbac_denied", "http.response.status_code": "403", "weft.upstream.instance_id": apiNode,
	}, nil)
}
