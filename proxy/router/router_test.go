package router

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/retry"
	"github.com/weft-mesh/weft/proxy/route"
)

func withRetry(p *retry.Policy) func(*route.Route) {
	return func(r *route.Route) { r.Action.Retry = p }
}

func withTimeout(d time.Duration) func(*route.Route) {
	return func(r *route.Route) { r.Action.Timeout = d }
}

func wantLocalReply(t *testing.T, got response, status int, reason, upstream string) {
	t.Helper()
	var b struct{ Error, Upstream string }
	json.Unmarshal([]byte(got.body), &b)
	if got.code != status || got.header.Get("x-weft-error") != reason || b.Error != reason || b.Upstream != upstream {
		t.Errorf("got %d x-weft-error %q body %q; want %d %q naming %q", got.code, got.header.Get("x-weft-error"), got.body, status, reason, upstream)
	}
}

func TestLocalReplies(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		cluster *config.Cluster
		route   route.Route
		status  int
		reason  string
	}{
		{"unknown cluster", nil, to("missing"), 503, "no_healthy_upstream"},
		{"no healthy host", &config.Cluster{Name: "c", ConnectTimeout: time.Second, Endpoints: []config.Endpoint{{Address: "127.0.0.1:1", Weight: 1}}}, to("c"), 503, "no_healthy_upstream"},
		{"connect failure", staticCluster("c", testnet.ClosedPort(t)), to("c"), 503, "connect_failure"},
		{"timeout", staticCluster("c", testnet.BlackHole(t)), to("c", withTimeout(50*time.Millisecond)), 504, "upstream_timeout"},
		{"reset", staticCluster("c", resetter(t)), to("c"), 503, "upstream_reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.setClusters()
			if tt.cluster != nil {
				e.setClusters(tt.cluster)
			}
			e.routes(tt.route)
			wantLocalReply(t, e.get("/"), tt.status, tt.reason, tt.route.Action.Clusters[0].Name)
		})
	}
}

// resetter closes every connection after reading the request.
func resetter(t *testing.T) string {
	return backend(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	})
}

func TestRetriesMoveToAnotherHost(t *testing.T) {
	e := newEnv(t)
	var bad atomic.Int32
	e.setClusters(staticCluster("c", status(t, 503, &bad), named(t, "good")))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 2, HostSelectionAttempts: 1})))
	for range 20 {
		if got := e.get("/"); got.code != 200 || got.body != "good" {
			t.Fatalf("got %d %q, want the retry on the good host", got.code, got.body)
		}
	}
	if bad.Load() == 0 || e.retries.Load() != bad.Load() {
		t.Errorf("bad host saw %d requests, %d retries; want every failure retried", bad.Load(), e.retries.Load())
	}
}

func TestRetriesExhaustedReturnTheUpstreamResponse(t *testing.T) {
	e := newEnv(t)
	var n atomic.Int32
	e.setClusters(staticCluster("c", status(t, 503, &n)))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.OnGatewayError, NumRetries: 2})))
	got := e.get("/")
	if got.code != 503 || got.body != "from backend" || got.header.Get("x-weft-error") != "" {
		t.Errorf("got %d %q %v, want the upstream's own 503", got.code, got.body, got.header)
	}
	if n.Load() != 3 {
		t.Errorf("upstream saw %d attempts, want 1 + 2 retries", n.Load())
	}
}

func TestRetryOnlyWhatThePolicySays(t *testing.T) {
	e := newEnv(t)
	var n atomic.Int32
	e.setClusters(staticCluster("c", status(t, 500, &n)))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.OnGatewayError | retry.OnConnectFailure, NumRetries: 3})))
	if got := e.get("/"); got.code != 500 || n.Load() != 1 {
		t.Errorf("500 with gateway-error: %d after %d attempts, want no retry", got.code, n.Load())
	}
}

func TestRetryBudget(t *testing.T) {
	e := newEnv(t)
	var n atomic.Int32
	c := staticCluster("c", status(t, 503, &n))
	c.Limits.MaxRetries = 0
	e.setClusters(c)
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 3})))
	if got := e.get("/"); got.code != 503 || n.Load() != 1 {
		t.Errorf("max_retries 0: %d after %d attempts, want the first result", got.code, n.Load())
	}
}

func TestConnectFailureRetried(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", testnet.ClosedPort(t), named(t, "up")))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.OnConnectFailure, NumRetries: 1, HostSelectionAttempts: 1})))
	for range 10 {
		if got := e.get("/"); got.code != 200 {
			t.Fatalf("got %d %q, want the retry to reach the live host", got.code, got.body)
		}
	}
}

// TestConnectFailureRetriedWithoutPolicy: a route with no retry policy
// still tries another host, once, when a bodyless request could not
// connect (a peer sidecar restarting while the control plane is down,
// found by the soak); a route's own policy of 0 retries, or a request
// body, leaves the failure to the client.
func TestConnectFailureRetriedWithoutPolicy(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", testnet.ClosedPort(t), named(t, "up")))
	tests := []struct {
		name     string
		route    route.Route
		body     string
		wantFail bool
	}{
		{"no policy, no body: retried", to("c"), "", false},
		{"policy of 0 retries: not retried", to("c", withRetry(&retry.Policy{On: retry.OnConnectFailure, NumRetries: 0})), "", true},
		{"no policy, a body: not retried", to("c"), "payload", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.routes(tt.route)
			failed := 0
			for range 20 { // round robin: half the first attempts go to the closed port
				req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/", nil)
				if tt.body != "" {
					req.Body, req.ContentLength = io.NopCloser(strings.NewReader(tt.body)), int64(len(tt.body))
				}
				got := e.do(req)
				switch {
				case got.code == 200 && got.body == "up":
				case got.code == 503 && got.header.Get("x-weft-error") == "connect_failure":
					failed++
				default:
					t.Fatalf("got %d %q", got.code, got.body)
				}
			}
			if (failed > 0) != tt.wantFail {
				t.Errorf("%d of 20 requests failed with connect_failure; want failures: %v", failed, tt.wantFail)
			}
		})
	}
}

func TestPerTryTimeout(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", testnet.BlackHole(t), named(t, "fast")))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 1, PerTryTimeout: 100 * time.Millisecond, HostSelectionAttempts: 1})))
	for range 6 {
		if got := e.get("/"); got.code != 200 || got.body != "fast" {
			t.Fatalf("got %d %q, want the fast host after a per-try timeout", got.code, got.body)
		}
	}
	e.setClusters(staticCluster("c", testnet.BlackHole(t)))
	start := time.Now()
	wantLocalReply(t, e.get("/"), 504, "upstream_timeout", "c")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two timed-out tries took %s", d)
	}
}

func TestRequestBodyReplayedOnRetry(t *testing.T) {
	e := newEnv(t)
	var first atomic.Bool
	var got []string
	var mu sync.Mutex
	flaky := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		if !first.Swap(true) {
			w.WriteHeader(503)
		}
	})
	e.setClusters(staticCluster("c", flaky))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 1})))
	req, _ := http.NewRequest("POST", "http://"+e.addr+"/", strings.NewReader("payload"))
	if res := e.do(req); res.code != 200 {
		t.Fatalf("POST = %d, want 200 after a retry", res.code)
	}
	if len(got) != 2 || got[0] != "payload" || got[1] != "payload" {
		t.Errorf("upstream bodies = %q, want the payload twice", got)
	}
}

func TestLargeBodyNotRetried(t *testing.T) {
	e := newEnv(t)
	var n atomic.Int32
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(503)
	})))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 2}), func(r *route.Route) { r.Action.BufferLimit = 1024 }))
	req, _ := http.NewRequest("POST", "http://"+e.addr+"/", bytes.NewReader(make([]byte, 4096)))
	if res := e.do(req); res.code != 503 || n.Load() != 1 {
		t.Errorf("4 KiB body over a 1 KiB buffer: %d after %d attempts, want one attempt", res.code, n.Load())
	}
}

func TestMaxRequestsOverflow(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var inside sync.WaitGroup
	inside.Add(2)
	var calls atomic.Int32
	slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			inside.Done()
			<-release
		}
	})
	c := staticCluster("c", slow)
	c.Limits.MaxRequests = 2
	e.setClusters(c)
	e.routes(to("c"))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { e.get("/") })
	}
	inside.Wait()
	wantLocalReply(t, e.get("/"), 503, "overflow", "c")
	close(release)
	wg.Wait()
	if got := e.get("/"); got.code != 200 {
		t.Errorf("after the slow requests: %d, want 200", got.code)
	}
}

func TestCircuitOpenFailsFast(t *testing.T) {
	e := newEnv(t)
	var n atomic.Int32
	c := staticCluster("c", status(t, 500, &n))
	s := outlier.Defaults()
	s.Consecutive5xx, s.MaxEjectionPercent = 3, 100
	c.Outlier = &s
	e.setClusters(c)
	e.routes(to("c"))
	for range 3 {
		if got := e.get("/"); got.code != 500 {
			t.Fatalf("got %d, want the backend's 500", got.code)
		}
	}
	start := time.Now()
	wantLocalReply(t, e.get("/"), 503, "circuit_open", "c")
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("circuit_open took %s", d)
	}
	if n.Load() != 3 {
		t.Errorf("backend saw %d requests, want 3: the open breaker must stop the fourth", n.Load())
	}
}

func TestHeaderChangesAndRewrites(t *testing.T) {
	e := newEnv(t)
	echo := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "1")
		w.Header().Set("Server", "app")
		io.WriteString(w, r.Host+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Added")+" "+r.Header.Get("X-Drop"))
	})
	e.setClusters(staticCluster("c", echo))
	e.routes(route.Route{
		Match: route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: "/api/"}},
		Action: route.Action{
			Clusters:      []route.WeightedCluster{{Name: "c", Weight: 1, RequestHeaders: route.Mutation{Add: []route.HeaderValue{{Key: "X-Added", Value: "cluster"}}}}},
			Timeout:       time.Second,
			PrefixRewrite: "/v2/", HasPrefixRewrite: true,
			HostRewrite: "api.internal",
		},
		RequestHeaders:  route.Mutation{Remove: []string{"X-Drop"}},
		ResponseHeaders: route.Mutation{Remove: []string{"Server"}, Add: []route.HeaderValue{{Key: "X-Route", Value: "r1", Action: route.OverwriteIfExistsOrAdd}}},
	})
	got := e.get("/api/users?id=1", "X-Drop", "secret")
	if got.body != "api.internal /v2/users?id=1 cluster " {
		t.Errorf("upstream saw %q", got.body)
	}
	if got.header.Get("X-Route") != "r1" || got.header.Get("Server") != "" || got.header.Get("X-Upstream") != "1" {
		t.Errorf("response headers %v", got.header)
	}
}

func TestWeightedClusters(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("v1", named(t, "v1")), staticCluster("v2", named(t, "v2")))
	e.routes(route.Route{
		Match:  route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: "/"}},
		Action: route.Action{Clusters: []route.WeightedCluster{{Name: "v1", Weight: 75}, {Name: "v2", Weight: 25}}, Timeout: time.Second},
	})
	got := map[string]int{}
	for range 400 {
		got[e.get("/").body]++
	}
	if got["v2"] < 60 || got["v2"] > 140 {
		t.Errorf("split = %v, want about 100 of 400 on v2", got)
	}
}

func TestLocalReplyCarriesResponseHeaderChanges(t *testing.T) {
	e := newEnv(t)
	e.routes(to("missing", func(r *route.Route) {
		r.ResponseHeaders = route.Mutation{Add: []route.HeaderValue{{Key: "X-Route", Value: "r"}}}
	}))
	if got := e.get("/"); got.code != 503 || got.header.Get("X-Route") != "r" {
		t.Errorf("local reply %d %v, want 503 with X-Route", got.code, got.header)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", testnet.BlackHole(t)))
	e.routes(to("c", withTimeout(0), func(r *route.Route) { r.Action.IdleTimeout, r.Action.HasIdleTimeout = 100*time.Millisecond, true }))
	wantLocalReply(t, e.get("/"), 504, "upstream_timeout", "c")
}

func TestGRPCTimeout(t *testing.T) {
	e := newEnv(t)
	seen := make(chan string, 1)
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Grpc-Timeout")
		<-r.Context().Done() // never answers: the proxy's deadline ends the call
	})))
	e.routes(to("c", withTimeout(10*time.Second)))
	start := time.Now()
	got := e.get("/pkg.Svc/M", "Content-Type", "application/grpc", "Grpc-Timeout", "100m")
	if got.code != 200 || got.header.Get("Grpc-Status") != "4" || got.header.Get("X-Weft-Error") != "upstream_timeout" {
		t.Errorf("got %d %v, want a trailers-only DEADLINE_EXCEEDED", got.code, got.header)
	}
	// The route allows 10 s: answering well before shows the caller's
	// shorter deadline was applied (the margin absorbs a loaded machine).
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("grpc-timeout 100m answered after %s, as if the route's 10 s timeout applied", d)
	}
	if v := <-seen; v == "" || v == "100m" {
		t.Errorf("upstream grpc-timeout %q, want the remaining time", v)
	}
}

func TestGRPCTimeoutParsing(t *testing.T) {
	grpcReq := func(v string) *http.Request {
		r, _ := http.NewRequest("POST", "/", nil)
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Grpc-Timeout", v)
		return r
	}
	for v, want := range map[string]time.Duration{"1H": time.Hour, "2M": 2 * time.Minute, "3S": 3 * time.Second, "100m": 100 * time.Millisecond, "5u": 5 * time.Microsecond, "7n": 7} {
		if got, ok := grpcTimeout(grpcReq(v)); !ok || got != want {
			t.Errorf("grpcTimeout(%q) = %s, %v; want %s", v, got, ok, want)
		}
	}
	for _, bad := range []string{"", "m", "123456789m", "10x", "-1S"} {
		if _, ok := grpcTimeout(grpcReq(bad)); ok {
			t.Errorf("grpcTimeout(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{100 * time.Millisecond: "100000u", 2 * time.Second: "2000000u", time.Hour: "3600000m", 0: "1n"} {
		if got := encodeGRPCTimeout(d); got != want {
			t.Errorf("encodeGRPCTimeout(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestHashCookieSetOnResponse(t *testing.T) {
	e := newEnv(t)
	a, b := named(t, "a"), named(t, "b")
	c := staticCluster("c", a, b)
	c.LB = config.LB{Policy: config.RingHash}
	e.setClusters(c)
	e.routes(to("c", func(r *route.Route) {
		r.Action.Hash = []route.HashPolicy{{Kind: route.HashCookie, Name: "sticky", HasCookieTTL: true, CookieTTL: time.Hour}}
	}))
	first := e.get("/")
	cookie := first.header.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "sticky=") {
		t.Fatalf("Set-Cookie = %q, want a generated sticky cookie", cookie)
	}
	value := strings.TrimPrefix(strings.Split(cookie, ";")[0], "sticky=")
	for range 20 {
		if got := e.get("/", "Cookie", "sticky="+value); got.body != first.body || got.header.Get("Set-Cookie") != "" {
			t.Fatalf("with the cookie: %q (Set-Cookie %q), want %q every time", got.body, got.header.Get("Set-Cookie"), first.body)
		}
	}
}

func TestEffectiveTimeout(t *testing.T) {
	req := func(grpcTimeout string) *http.Request {
		r, _ := http.NewRequest("POST", "/", nil)
		r.Header.Set("Content-Type", "application/grpc")
		if grpcTimeout != "" {
			r.Header.Set("Grpc-Timeout", grpcTimeout)
		}
		return r
	}
	plain, _ := http.NewRequest("GET", "/", nil)
	plain.Header.Set("Grpc-Timeout", "1S") // not a gRPC request: ignored
	tests := []struct {
		name   string
		action route.Action
		req    *http.Request
		want   time.Duration
	}{
		{"route timeout", route.Action{Timeout: 15 * time.Second}, req(""), 15 * time.Second},
		{"grpc-timeout caps it", route.Action{Timeout: 15 * time.Second}, req("2S"), 2 * time.Second},
		{"a longer grpc-timeout does not extend it", route.Action{Timeout: time.Second}, req("2S"), time.Second},
		{"grpc-timeout with no route timeout", route.Action{}, req("3S"), 3 * time.Second},
		{"not gRPC", route.Action{Timeout: 15 * time.Second}, plain, 15 * time.Second},
		{"max_grpc_timeout caps grpc-timeout", route.Action{Timeout: time.Second, MaxGRPCTimeout: 5 * time.Second, HasMaxGRPCTimeout: true}, req("1M"), 5 * time.Second},
		{"max_grpc_timeout replaces the route timeout", route.Action{Timeout: time.Second, MaxGRPCTimeout: 5 * time.Second, HasMaxGRPCTimeout: true}, req("3S"), 3 * time.Second},
		{"max_grpc_timeout without grpc-timeout", route.Action{Timeout: time.Second, MaxGRPCTimeout: 5 * time.Second, HasMaxGRPCTimeout: true}, req(""), 5 * time.Second},
		{"max_grpc_timeout 0 is no cap", route.Action{Timeout: time.Second, HasMaxGRPCTimeout: true}, req(""), 0},
		{"offset", route.Action{HasMaxGRPCTimeout: true, GRPCTimeoutOffset: 100 * time.Millisecond}, req("1S"), 900 * time.Millisecond},
		{"max_stream_duration", route.Action{Timeout: 15 * time.Second, MaxStreamDuration: time.Second}, req(""), time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := effectiveTimeout(&tt.action, tt.req); got != tt.want {
				t.Errorf("timeout = %s, want %s", got, tt.want)
			}
		})
	}
}
