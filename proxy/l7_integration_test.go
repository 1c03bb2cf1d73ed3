package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// l7 is one weft-proxy with an outbound HTTP listener on route
// configuration "api", served by a real go-control-plane.
type l7 struct {
	t       *testing.T
	cp      *controlPlane
	p       *runningProxy
	version int
	addr    string
	// collector, when set, is the OTLP/gRPC address the listener traces
	// every request to, as service "web".
	collector string
}

const l7Listener = "api:127.0.0.1:0"

// startL7 publishes the route configuration, clusters and load
// assignments and waits until the proxy serves them.
func startL7(t *testing.T, rc *routev3.RouteConfiguration, clusters []*clusterv3.Cluster, loads ...*endpointv3.ClusterLoadAssignment) *l7 {
	t.Helper()
	return startTracedL7(t, "", rc, clusters, loads...)
}

// startTracedL7 is startL7 with the listener tracing to collector ("":
// no tracing).
func startTracedL7(t *testing.T, collector string, rc *routev3.RouteConfiguration, clusters []*clusterv3.Cluster, loads ...*endpointv3.ClusterLoadAssignment) *l7 {
	t.Helper()
	tl := newTestLog(t)
	x := &l7{t: t, cp: startControlPlane(t, tl, "127.0.0.1:0"), collector: collector}
	x.set(rc, clusters, loads...)
	x.p = startProxy(t, tl, x.cp.addr)
	x.p.waitReady()
	x.addr = x.p.listenerAddr(l7Listener)
	return x
}

func (x *l7) set(rc *routev3.RouteConfiguration, clusters []*clusterv3.Cluster, loads ...*endpointv3.ClusterLoadAssignment) {
	x.t.Helper()
	x.version++
	listener := xdstest.HTTPListenerRDS(l7Listener, "127.0.0.1:0", rc.GetName())
	r := map[resourcev3.Type][]types.Resource{resourcev3.RouteType: {rc}}
	if x.collector != "" {
		listener = xdstest.WithHCM(listener, func(h *hcmv3.HttpConnectionManager) {
			h.Tracing = xdstest.OpenTelemetryTracing(otlpCluster, "web", 100)
		})
		r[resourcev3.ClusterType] = []types.Resource{xdstest.WithHTTP2(xdstest.StaticCluster(otlpCluster, xdstest.Endpoint(x.collector)))}
	}
	r[resourcev3.ListenerType] = []types.Resource{listener}
	for _, c := range clusters {
		r[resourcev3.ClusterType] = append(r[resourcev3.ClusterType], c)
	}
	for _, l := range loads {
		r[resourcev3.EndpointType] = append(r[resourcev3.EndpointType], l)
	}
	x.cp.set(fmt.Sprintf("v%d", x.version), r)
}

type reply struct {
	code    int
	body    string
	reason  string
	elapsed time.Duration
}

var l7Client = &http.Client{Timeout: wait, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func (x *l7) get(path string, headers ...string) reply {
	x.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+x.addr+path, nil)
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := l7Client.Do(req)
	if err != nil {
		x.t.Fatalf("GET %s via the proxy: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header.Get("x-weft-error"), time.Since(start)}
}

// parallel runs n requests from workers goroutines and counts bodies.
func (x *l7) parallel(n, workers int, path string) map[string]int {
	x.t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int32(n) {
				r := x.get(path)
				key := r.body
				if r.code != 200 {
					key = fmt.Sprintf("%d %s", r.code, r.reason)
				}
				mu.Lock()
				got[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

func eds(name string) *clusterv3.Cluster { return xdstest.EDSCluster(name) }

func TestWeightedSplit(t *testing.T) {
	v1, v2 := namedBackend(t, "v1"), namedBackend(t, "v2")
	x := startL7(t, xdstest.Routes("api", xdstest.Route(xdstest.Prefix("/"), xdstest.Split("api-v1", 9000, "api-v2", 1000))),
		[]*clusterv3.Cluster{eds("api-v1"), eds("api-v2")},
		loadAssignment("api-v1", []string{v1}).(*endpointv3.ClusterLoadAssignment), loadAssignment("api-v2", []string{v2}).(*endpointv3.ClusterLoadAssignment))
	const n = 2000
	got := x.parallel(n, 8, "/")
	if share := float64(got["v2"]) / n; got["v1"]+got["v2"] != n || share < 0.06 || share > 0.14 {
		t.Errorf("split = %v: v2 has %.3f, want 0.10 ± 0.04 and no failures", got, share)
	}
}

func TestLeastRequestAvoidsASlowBackend(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(100 * time.Millisecond): // the slowness under test
		case <-r.Context().Done():
		}
		io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	addrs := []string{strings.TrimPrefix(slow.URL, "http://"), namedBackend(t, "f1"), namedBackend(t, "f2"), namedBackend(t, "f3")}
	x := startL7(t, xdstest.RouteConfig("api", "api"),
		[]*clusterv3.Cluster{xdstest.WithLB(eds("api"), clusterv3.Cluster_LEAST_REQUEST)},
		loadAssignment("api", addrs).(*endpointv3.ClusterLoadAssignment))
	const n = 800
	got := x.parallel(n, 16, "/")
	if share := float64(got["slow"]) / n; share > 0.20 || got["slow"]+got["f1"]+got["f2"]+got["f3"] != n {
		t.Errorf("picks = %v: the slow backend got %.3f, want at most 0.20", got, share)
	}
}

func TestRingHashPinsAHeader(t *testing.T) {
	addrs := []string{namedBackend(t, "b1"), namedBackend(t, "b2"), namedBackend(t, "b3")}
	a := xdstest.ToCluster("api")
	a.HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
		Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"}}}}
	x := startL7(t, xdstest.Routes("api", xdstest.Route(xdstest.Prefix("/"), a)),
		[]*clusterv3.Cluster{xdstest.WithLB(eds("api"), clusterv3.Cluster_RING_HASH)},
		loadAssignment("api", addrs).(*endpointv3.ClusterLoadAssignment))
	used := map[string]bool{}
	for u := range 30 {
		user := fmt.Sprintf("user-%d", u)
		first := x.get("/", "x-user", user).body
		used[first] = true
		for range 10 {
			if got := x.get("/", "x-user", user).body; got != first {
				t.Fatalf("%s went to %s, then %s", user, first, got)
			}
		}
	}
	if len(used) < 2 {
		t.Errorf("30 users all went to %v, want them spread", used)
	}
}

func TestHeaderRoutedSubset(t *testing.T) {
	stable, canary := namedBackend(t, "stable"), namedBackend(t, "canary")
	match := xdstest.Prefix("/")
	match.Headers = []*routev3.HeaderMatcher{xdstest.HeaderExact("x-version", "v2")}
	x := startL7(t, xdstest.Routes("api", xdstest.Route(match, xdstest.ToCluster("v2.api")), xdstest.Route(xdstest.Prefix("/"), xdstest.ToCluster("api"))),
		[]*clusterv3.Cluster{eds("api"), eds("v2.api")},
		loadAssignment("api", []string{stable}).(*endpointv3.ClusterLoadAssignment), loadAssignment("v2.api", []string{canary}).(*endpointv3.ClusterLoadAssignment))
	for range 10 {
		if got := x.get("/", "x-version", "v2"); got.body != "canary" {
			t.Fatalf("x-version: v2 went to %q", got.body)
		}
		if got := x.get("/"); got.body != "stable" {
			t.Fatalf("no header went to %q", got.body)
		}
	}
}

func TestMaxRequestsOverflow(t *testing.T) {
	release := make(chan struct{})
	var inside sync.WaitGroup
	inside.Add(2)
	var calls atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			inside.Done()
			<-release
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { closeOnce(release) })
	x := startL7(t, xdstest.RouteConfig("api", "api"),
		[]*clusterv3.Cluster{xdstest.WithCircuitBreakers(eds("api"), xdstest.Thresholds{MaxRequests: 2})},
		loadAssignment("api", []string{strings.TrimPrefix(slow.URL, "http://")}).(*endpointv3.ClusterLoadAssignment))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { x.get("/") })
	}
	inside.Wait()
	for range 5 {
		if got := x.get("/"); got.code != 503 || got.reason != "overflow" {
			t.Errorf("third concurrent request: %d %q, want 503 overflow", got.code, got.reason)
		}
	}
	closeOnce(release)
	wg.Wait()
	if got := x.get("/"); got.code != 200 {
		t.Errorf("after the slow requests: %d %s", got.code, got.reason)
	}
}

var closeMu sync.Mutex

func closeOnce(c chan struct{}) {
	closeMu.Lock()
	defer closeMu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	var calls atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(500)
	}))
	t.Cleanup(failing.Close)
	x := startL7(t, xdstest.RouteConfig("api", "api"),
		[]*clusterv3.Cluster{xdstest.WithOutlierDetection(eds("api"), 3, 100, 30*time.Second)},
		loadAssignment("api", []string{strings.TrimPrefix(failing.URL, "http://")}).(*endpointv3.ClusterLoadAssignment))
	for range 3 {
		if got := x.get("/"); got.code != 500 {
			t.Fatalf("got %d, want the backend's 500", got.code)
		}
	}
	var took []time.Duration
	for range 21 {
		got := x.get("/")
		if got.code != 503 || got.reason != "circuit_open" {
			t.Fatalf("after 3 failures: %d %q, want 503 circuit_open", got.code, got.reason)
		}
		took = append(took, got.elapsed)
	}
	// The median, measured at the client: a loaded machine running the
	// race detector may stall a single request now and then.
	slices.Sort(took)
	if median := took[len(took)/2]; median > 5*time.Millisecond {
		t.Errorf("circuit_open answered in %s (median; slowest %s), want < 5 ms", median, took[len(took)-1])
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the backend saw %d requests, want 3", n)
	}
}

func retryRoute(retryOn string, retries uint32) *routev3.RouteConfiguration {
	a := xdstest.ToCluster("api")
	a.RetryPolicy = &routev3.RetryPolicy{RetryOn: retryOn, NumRetries: wrapperspb.UInt32(retries)}
	return xdstest.Routes("api", xdstest.Route(xdstest.Prefix("/"), a))
}

// retryBudget is the retry budget the control plane puts on every HTTP
// cluster.
func retryBudget(c *clusterv3.Cluster) *clusterv3.Cluster {
	c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		RetryBudget: &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 20}, MinRetryConcurrency: wrapperspb.UInt32(3)},
	}}}
	return c
}

func TestRetriesAndEjectionHideAFlakyBackend(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail func(n int64) bool
	}{
		// Every other request fails: never 3 in a row, so retries alone
		// must hide the failures.
		{"alternating failures", func(n int64) bool { return n%2 == 0 }},
		// Random failures: runs of 3 eject the backend too.
		{"random failures", func(int64) bool { return rand.IntN(2) == 0 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.fail(calls.Add(1)) {
					w.WriteHeader(503)
					return
				}
				io.WriteString(w, "flaky")
			}))
			t.Cleanup(flaky.Close)
			a := xdstest.ToCluster("api")
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "retriable-status-codes", RetriableStatusCodes: []uint32{503}, NumRetries: wrapperspb.UInt32(3),
				RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(25 * time.Millisecond), MaxInterval: durationpb.New(250 * time.Millisecond)}}
			x := startL7(t, xdstest.Routes("api", xdstest.Route(xdstest.Prefix("/"), a)),
				[]*clusterv3.Cluster{xdstest.WithOutlierDetection(retryBudget(eds("api")), 3, 50, 30*time.Second)},
				loadAssignment("api", []string{strings.TrimPrefix(flaky.URL, "http://"), namedBackend(t, "healthy")}).(*endpointv3.ClusterLoadAssignment))
			const n = 1000
			got := x.parallel(n, 4, "/")
			if rate := float64(got["flaky"]+got["healthy"]) / n; rate < 0.995 {
				t.Errorf("success rate %.4f (%v), want ≥ 0.995", rate, got)
			}
			t.Logf("results %v; the flaky backend saw %d attempts", got, calls.Load())
		})
	}
}

func TestBlackHoledBackendTimesOutThenIsEjected(t *testing.T) {
	a := xdstest.ToCluster("api")
	a.Timeout = durationpb.New(200 * time.Millisecond)
	x := startL7(t, xdstest.Routes("api", xdstest.Route(xdstest.Prefix("/"), a)),
		[]*clusterv3.Cluster{xdstest.WithOutlierDetection(eds("api"), 2, 50, 30*time.Second)},
		loadAssignment("api", []string{testnet.BlackHole(t), namedBackend(t, "alive")}).(*endpointv3.ClusterLoadAssignment))
	timeouts := 0
	for range 8 {
		switch got := x.get("/"); {
		case got.code == 504 && got.reason == "upstream_timeout":
			timeouts++
		case got.code != 200:
			t.Fatalf("got %d %q, want 200 or 504 upstream_timeout", got.code, got.reason)
		}
	}
	if timeouts != 2 {
		t.Errorf("%d timeouts, want exactly 2 before the black hole is ejected", timeouts)
	}
	for range 20 {
		if got := x.get("/"); got.code != 200 || got.body != "alive" {
			t.Fatalf("after ejection: %d %q", got.code, got.reason)
		}
	}
}

func TestPriorityFailover(t *testing.T) {
	primary1, primary2, backup := namedBackend(t, "p1"), namedBackend(t, "p2"), namedBackend(t, "backup")
	rc := xdstest.RouteConfig("api", "api")
	clusters := []*clusterv3.Cluster{eds("api")}
	x := startL7(t, rc, clusters, xdstest.PriorityLoadAssignment("api",
		[]*endpointv3.LbEndpoint{xdstest.Endpoint(primary1), xdstest.Endpoint(primary2)},
		[]*endpointv3.LbEndpoint{xdstest.Endpoint(backup)}))
	if got := x.parallel(40, 2, "/"); got["backup"] != 0 {
		t.Fatalf("with healthy primaries: %v, want no traffic on the backup", got)
	}
	x.set(rc, clusters, xdstest.PriorityLoadAssignment("api",
		[]*endpointv3.LbEndpoint{xdstest.Unhealthy(primary1), xdstest.Unhealthy(primary2)},
		[]*endpointv3.LbEndpoint{xdstest.Endpoint(backup)}))
	poll.UntilTrue(t, wait, "failover to priority 1", func() bool { return x.get("/").body == "backup" })
	if got := x.parallel(40, 2, "/"); got["backup"] != 40 {
		t.Errorf("with every primary unhealthy: %v, want all on the backup", got)
	}
}

// TestFailoverWhenPrimariesAreEjected: outlier ejection moves traffic to
// the next priority like an unhealthy status does.
func TestFailoverWhenPrimariesAreEjected(t *testing.T) {
	var primaryCalls atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		primaryCalls.Add(1)
		w.WriteHeader(503)
	}))
	t.Cleanup(broken.Close)
	backup := namedBackend(t, "backup")
	x := startL7(t, retryRoute("5xx", 1), []*clusterv3.Cluster{xdstest.WithOutlierDetection(eds("api"), 2, 100, 30*time.Second)},
		xdstest.PriorityLoadAssignment("api",
			[]*endpointv3.LbEndpoint{xdstest.Endpoint(strings.TrimPrefix(broken.URL, "http://"))},
			[]*endpointv3.LbEndpoint{xdstest.Endpoint(backup)}))
	x.get("/") // 2 failed attempts eject the only primary
	if got := x.parallel(20, 2, "/"); got["backup"] != 20 {
		t.Errorf("after ejecting the primary: %v, want all 20 on the backup", got)
	}
	if n := primaryCalls.Load(); n != 2 {
		t.Errorf("primary saw %d requests, want 2", n)
	}
}

// TestErrorsExplainThemselves: every local reply names its reason and
// cluster.
func TestErrorsExplainThemselves(t *testing.T) {
	x := startL7(t, xdstest.RouteConfig("api", "api"), []*clusterv3.Cluster{eds("api")},
		loadAssignment("api", []string{testnet.ClosedPort(t)}).(*endpointv3.ClusterLoadAssignment))
	req, _ := http.NewRequest("GET", "http://"+x.addr+"/", nil)
	resp, err := l7Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error, Upstream string }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || resp.Header.Get("x-weft-error") != "connect_failure" || body.Error != "connect_failure" || body.Upstream != "api" {
		t.Errorf("got %d %q %+v, want 503 connect_failure naming api", resp.StatusCode, resp.Header.Get("x-weft-error"), body)
	}
}
