package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

func (p *runningProxy) post(path string) (int, string) {
	p.t.Helper()
	resp, err := http.Post("http://"+p.admin+path, "text/plain", nil)
	if err != nil {
		p.t.Fatalf("admin POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAdminClustersAndBreakerMetrics: /clusters shows every endpoint with
// its health, weight, breaker state and ejection; an outlier ejection
// shows there and in weft_proxy_breaker_state and
// weft_proxy_outlier_ejections_total. With its only healthy host ejected
// the cluster is in panic mode (the default healthy_panic_threshold,
// 50 %), which /clusters and weft_proxy_cluster_panic show.
func TestAdminClustersAndBreakerMetrics(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	brokenAddr, downAddr := broken.Listener.Addr().String(), "127.0.0.1:9"
	tl := newTestLog(t)
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	const name = "api:127.0.0.1:0"
	cp.set("v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerRDS(name, "127.0.0.1:0", "api")},
		resourcev3.RouteType:    {xdstest.RouteConfig("api", "api")},
		resourcev3.ClusterType: {xdstest.WithOutlierDetection(xdstest.StaticCluster("api",
			xdstest.WeightedEndpoint(brokenAddr, corev3.HealthStatus_HEALTHY, 3),
			xdstest.Unhealthy(downAddr)), 2, 100, time.Minute)},
	})
	p := startProxyWith(t, proxy.Options{ProxyID: nodeID, XDSAddrs: []string{cp.addr}, Logger: tl.slog()})
	p.waitReady()

	clusters := func() []cluster.Info {
		_, body := p.adminGet("/clusters")
		var cs []cluster.Info
		if err := json.Unmarshal(body, &cs); err != nil {
			t.Fatalf("/clusters: %v: %s", err, body)
		}
		return cs
	}
	want := []cluster.Info{{Name: "api", Hosts: []cluster.HostInfo{
		{Address: brokenAddr, Healthy: true, Weight: 3, Breaker: "closed"},
		{Address: downAddr, Healthy: false, Weight: 1, Breaker: "closed"},
	}}}
	if diff := cmp.Diff(want, clusters()); diff != "" {
		t.Errorf("/clusters before any request (-want +got):\n%s", diff)
	}

	url := "http://" + p.listenerAddr(name) + "/"
	for range 2 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want[0].Hosts[0].Breaker, want[0].Hosts[0].Ejected, want[0].Panic = "open", true, true
	poll.UntilTrue(t, wait, "the ejection in /clusters, the requests ended", func() bool {
		diff := cmp.Diff(want, clusters())
		if diff != "" {
			t.Logf("/clusters (-want +got):\n%s", diff)
		}
		return diff == ""
	})
	mfs := p.metricsOf()
	if got := sum(mfs, "weft_proxy_breaker_state", map[string]string{"cluster": "api", "host": brokenAddr}); got != 2 {
		t.Errorf("weft_proxy_breaker_state of the ejected host = %v, want 2 (open)", got)
	}
	if got := sum(mfs, "weft_proxy_outlier_ejections_total", map[string]string{"cluster": "api"}); got != 1 {
		t.Errorf("weft_proxy_outlier_ejections_total = %v, want 1", got)
	}
	if got := sum(mfs, "weft_proxy_cluster_panic", map[string]string{"cluster": "api"}); got != 1 {
		t.Errorf("weft_proxy_cluster_panic = %v, want 1", got)
	}
}

// TestRemovedHostsAndClustersLeaveMetrics: once a configuration without
// them is applied, an ejected host that left its cluster and a removed
// cluster no longer have series in /metrics (a removed host would
// otherwise report its breaker open forever), while the host that stays
// keeps its breaker state and its cluster its ejection count.
func TestRemovedHostsAndClustersLeaveMetrics(t *testing.T) {
	broken := func() string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "broken", http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	leaving, staying, dbHost := broken(), broken(), broken()
	tl := newTestLog(t)
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	const apiName, dbName = "api:127.0.0.1:0", "db:127.0.0.1:0"
	ejecting := func(c *clusterv3.Cluster) *clusterv3.Cluster {
		return xdstest.WithOutlierDetection(c, 2, 100, time.Minute)
	}
	cp.set("v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerRDS(apiName, "127.0.0.1:0", "api"), xdstest.HTTPListenerRDS(dbName, "127.0.0.1:0", "db")},
		resourcev3.RouteType:    {xdstest.RouteConfig("api", "api"), xdstest.RouteConfig("db", "db")},
		resourcev3.ClusterType: {
			ejecting(xdstest.StaticCluster("api", xdstest.Endpoint(leaving), xdstest.Endpoint(staying))),
			ejecting(xdstest.StaticCluster("db", xdstest.Endpoint(dbHost))),
		},
	})
	p := startProxy(t, tl, cp.addr)
	p.waitReady()

	// Eject every host: request each cluster until /clusters shows it.
	ejected := func(name string) bool {
		_, body := p.adminGet("/clusters")
		var cs []cluster.Info
		if err := json.Unmarshal(body, &cs); err != nil {
			t.Fatalf("/clusters: %v: %s", err, body)
		}
		for _, c := range cs {
			if c.Name == name {
				return !slices.ContainsFunc(c.Hosts, func(h cluster.HostInfo) bool { return !h.Ejected })
			}
		}
		return false
	}
	for _, l := range []struct{ listener, cluster string }{{apiName, "api"}, {dbName, "db"}} {
		url := "http://" + p.listenerAddr(l.listener) + "/"
		poll.UntilTrue(t, wait, "every host of "+l.cluster+" ejected", func() bool {
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
			}
			return ejected(l.cluster)
		})
	}
	mfs := p.metricsOf()
	for _, h := range []struct{ cluster, host string }{{"api", leaving}, {"api", staying}, {"db", dbHost}} {
		if got := sum(mfs, "weft_proxy_breaker_state", map[string]string{"cluster": h.cluster, "host": h.host}); got != 2 {
			t.Fatalf("before the update: weft_proxy_breaker_state{cluster=%q,host=%q} = %v, want 2 (open)", h.cluster, h.host, got)
		}
	}

	cp.set("v2", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerRDS(apiName, "127.0.0.1:0", "api")},
		resourcev3.RouteType:    {xdstest.RouteConfig("api", "api")},
		resourcev3.ClusterType:  {ejecting(xdstest.StaticCluster("api", xdstest.Endpoint(staying)))},
	})
	cp.waitRequest("CDS ACK of v2", ackOf(resourcev3.ClusterType, "v2")) // sent once applied

	mfs = p.metricsOf()
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   int // series
	}{
		{"weft_proxy_breaker_state", map[string]string{"cluster": "api", "host": leaving}, 0},
		{"weft_proxy_breaker_state", map[string]string{"cluster": "db"}, 0},
		{"weft_proxy_outlier_ejections_total", map[string]string{"cluster": "db"}, 0},
		{"weft_proxy_retries_total", map[string]string{"cluster": "db"}, 0},
		{"weft_proxy_breaker_state", map[string]string{"cluster": "api", "host": staying}, 1},
		{"weft_proxy_outlier_ejections_total", map[string]string{"cluster": "api"}, 1},
	} {
		if got := seriesOf(mfs, tc.family, tc.labels); got != tc.want {
			t.Errorf("after the update: %d series of %s%v, want %d", got, tc.family, tc.labels, tc.want)
		}
	}
	if got := sum(mfs, "weft_proxy_breaker_state", map[string]string{"cluster": "api", "host": staying}); got != 2 {
		t.Errorf("after the update: the staying host's breaker state = %v, want 2 (still open)", got)
	}
	if got := sum(mfs, "weft_proxy_outlier_ejections_total", map[string]string{"cluster": "api"}); got != 2 {
		t.Errorf("after the update: weft_proxy_outlier_ejections_total{cluster=\"api\"} = %v, want 2", got)
	}
}

// seriesOf counts family's series whose labels include want.
func seriesOf(mfs map[string]*dto.MetricFamily, family string, want map[string]string) int {
	n := 0
	for _, m := range mfs[family].GetMetric() {
		if hasLabels(m, want) {
			n++
		}
	}
	return n
}

// TestAdminLoggingAndQuit: /logging changes the log level at runtime and
// refuses unknown levels; /quitquitquit shuts the proxy down gracefully.
func TestAdminLoggingAndQuit(t *testing.T) {
	tl := newTestLog(t)
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	cp.set("v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.TCPListener("echo", "127.0.0.1:0", "echo")},
		resourcev3.ClusterType:  {xdstest.StaticCluster("echo", xdstest.Endpoint(echoServer(t)))},
	})
	level := new(slog.LevelVar)
	level.Set(slog.LevelInfo)
	p := startProxyWith(t, proxy.Options{ProxyID: nodeID, XDSAddrs: []string{cp.addr}, Logger: tl.slog(), LogLevel: level})
	p.waitReady()

	for _, tc := range []struct {
		query    string
		wantCode int
		want     slog.Level
	}{
		{"?level=debug", http.StatusOK, slog.LevelDebug},
		{"?level=loud", http.StatusBadRequest, slog.LevelDebug},
		{"", http.StatusBadRequest, slog.LevelDebug},
		{"?level=warn", http.StatusOK, slog.LevelWarn},
	} {
		code, body := p.post("/logging" + tc.query)
		if code != tc.wantCode || level.Level() != tc.want {
			t.Errorf("POST /logging%s: %d %q, level %s; want %d, level %s", tc.query, code, body, level.Level(), tc.wantCode, tc.want)
		}
	}
	if code, body := p.adminGet("/logging"); code != http.StatusOK || !strings.Contains(string(body), "WARN") {
		t.Errorf("GET /logging: %d %q, want the level WARN", code, body)
	}

	if code, body := p.post("/quitquitquit"); code != http.StatusOK {
		t.Fatalf("POST /quitquitquit: %d %q", code, body)
	}
	poll.UntilTrue(t, wait, "the admin API to stop after /quitquitquit", func() bool {
		resp, err := http.Get("http://" + p.admin + "/healthz")
		if err != nil {
			return true
		}
		resp.Body.Close()
		return false
	})
}

// TestRetriesAreCounted: every retried attempt counts in
// weft_proxy_retries_total of its cluster.
func TestRetriesAreCounted(t *testing.T) {
	var calls atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	x := startL7(t, retryRoute("5xx", 2), []*clusterv3.Cluster{eds("api")},
		loadAssignment("api", []string{strings.TrimPrefix(failing.URL, "http://")}).(*endpointv3.ClusterLoadAssignment))
	const n = 5
	for range n {
		if got := x.get("/"); got.code != http.StatusServiceUnavailable {
			t.Fatalf("GET /: %d, want the backend's 503 after the retries", got.code)
		}
	}
	if got, want := sum(x.p.metricsOf(), "weft_proxy_retries_total", map[string]string{"cluster": "api"}), float64(calls.Load()-n); got != want || want != 2*n {
		t.Errorf("weft_proxy_retries_total{cluster=api} = %v; the backend saw %d attempts for %d requests, want %d retries", got, calls.Load(), n, 2*n)
	}
}
