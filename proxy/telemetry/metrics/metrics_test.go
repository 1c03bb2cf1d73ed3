package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// notInDocsYet are metrics this package adds to the documented contract;
// each needs a row in docs/observability.md.
var notInDocsYet = map[string]family{
	"weft_proxy_access_log_dropped_total": {typ: "counter"},
}

type family struct {
	typ    string
	labels []string
}

// documented reads the sidecar metrics table of docs/observability.md.
func documented(t *testing.T) map[string]family {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(doc), "### Sidecar")
	end := strings.Index(string(doc), "### Control plane")
	if start < 0 || end < start {
		t.Fatal("docs/observability.md: no sidecar metrics section")
	}
	ticked := regexp.MustCompile("`([^`]+)`")
	out := map[string]family{}
	for _, line := range strings.Split(string(doc)[start:end], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.Contains(cells[1], "weft_proxy_") {
			continue
		}
		f := family{typ: strings.TrimSpace(cells[2])}
		for _, m := range ticked.FindAllStringSubmatch(cells[3], -1) {
			f.labels = append(f.labels, m[1])
		}
		slices.Sort(f.labels)
		prev := ""
		for _, m := range ticked.FindAllStringSubmatch(cells[1], -1) {
			name := m[1]
			if strings.HasPrefix(name, "_") { // "`_closed_total`" after "`..._opened_total`"
				segs := strings.Split(prev, "_")
				name = strings.Join(segs[:len(segs)-strings.Count(name, "_")], "_") + name
			}
			out[name], prev = f, name
		}
	}
	return out
}

// exercised returns metrics with every handle used once, and their registry.
func exercised(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Route(Inbound, "web", "api", ProtocolHTTP).Observe(200, "", "", time.Millisecond)
	tcp := m.TCP(Outbound, "db")
	tcp.Opened()
	tcp.Closed(10, 20)
	c := m.Cluster("api.default.dc1")
	c.Retried()
	c.Ejected()
	c.BreakerState("10.0.0.1:21000", BreakerOpen)
	m.XDSNack("type.googleapis.com/envoy.config.listener.v3.Listener")
	m.SetStatus(Status{
		XDSConnected:     func() bool { return true },
		CertExpiry:       func() (time.Time, bool) { return time.Now().Add(time.Hour), true },
		AccessLogDropped: func() uint64 { return 3 },
	})
	return m, reg
}

func TestExactlyTheDocumentedMetrics(t *testing.T) {
	want := documented(t)
	if len(want) < 10 {
		t.Fatalf("parsed only %d metrics from the docs: %v", len(want), want)
	}
	for k, v := range notInDocsYet {
		want[k] = v
	}
	_, reg := exercised(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]family{}
	for _, mf := range mfs {
		f := family{typ: strings.ToLower(mf.GetType().String())}
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			f.labels = append(f.labels, lp.GetName())
		}
		slices.Sort(f.labels)
		got[mf.GetName()] = f
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(family{})); diff != "" {
		t.Errorf("metrics differ from docs/observability.md (-docs +registry):\n%s", diff)
	}
}

func TestRouteCountsByResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	r := m.Route(Outbound, "web", "api", ProtocolGRPC)
	if m.Route(Outbound, "web", "api", ProtocolGRPC) != r {
		t.Error("Route returned a new handle for the same labels")
	}
	for range 3 {
		r.Observe(200, "0", "", 2*time.Millisecond)
	}
	r.Observe(200, "14", "", time.Millisecond)
	r.Observe(503, "", "no_healthy_upstream", time.Millisecond)
	r.Observe(503, "", "made_up_by_an_app", time.Millisecond)
	r.Observe(200, "99", "", time.Millisecond)

	want := `
# HELP weft_proxy_requests_total HTTP and gRPC requests; reason is the x-weft-error reason of responses the sidecar generated itself.
# TYPE weft_proxy_requests_total counter
weft_proxy_requests_total{code="200",destination="api",direction="outbound",grpc_status="0",protocol="grpc",reason="",source="web"} 3
weft_proxy_requests_total{code="200",destination="api",direction="outbound",grpc_status="14",protocol="grpc",reason="",source="web"} 1
weft_proxy_requests_total{code="200",destination="api",direction="outbound",grpc_status="other",protocol="grpc",reason="",source="web"} 1
weft_proxy_requests_total{code="503",destination="api",direction="outbound",grpc_status="",protocol="grpc",reason="no_healthy_upstream",source="web"} 1
weft_proxy_requests_total{code="503",destination="api",direction="outbound",grpc_status="",protocol="grpc",reason="other",source="web"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "weft_proxy_requests_total"); err != nil {
		t.Error(err)
	}
	if got := histogramCount(t, reg, "weft_proxy_request_duration_seconds"); got != 7 {
		t.Errorf("histogram count = %d, want 7", got)
	}
}

func histogramCount(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m := New(prometheus.NewRegistry())
	r := m.Route(Inbound, "web", "api", ProtocolHTTP)
	r.Observe(200, "", "", time.Millisecond) // first sight of the result
	r.Observe(503, "", "overflow", time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		r.Observe(200, "", "", time.Millisecond)
		r.Observe(503, "", "overflow", time.Millisecond)
	}); n != 0 {
		t.Errorf("Observe allocates %v times, want 0", n)
	}
}

func TestNilHandlesRecordNothing(t *testing.T) {
	var r *Route
	r.Observe(200, "", "", time.Second)
	var tcp *TCP
	tcp.Opened()
	tcp.Transferred(1, 1)
	tcp.Closed(1, 1)
	var c *Cluster
	c.Retried()
	c.Ejected()
	c.BreakerState("h", BreakerOpen)
}

func TestTCP(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	tcp := m.TCP(Inbound, "api")
	tcp.Opened()
	tcp.Opened()
	tcp.Transferred(100, 0)
	tcp.Closed(5, 7)
	want := `
# HELP weft_proxy_tcp_bytes_total Bytes proxied over TCP: received from or sent to the downstream peer.
# TYPE weft_proxy_tcp_bytes_total counter
weft_proxy_tcp_bytes_total{destination="api",direction="inbound",flow="received"} 105
weft_proxy_tcp_bytes_total{destination="api",direction="inbound",flow="sent"} 7
# HELP weft_proxy_tcp_connections_closed_total TCP connections closed.
# TYPE weft_proxy_tcp_connections_closed_total counter
weft_proxy_tcp_connections_closed_total{destination="api",direction="inbound"} 1
# HELP weft_proxy_tcp_connections_opened_total TCP connections opened.
# TYPE weft_proxy_tcp_connections_opened_total counter
weft_proxy_tcp_connections_opened_total{destination="api",direction="inbound"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"weft_proxy_tcp_bytes_total", "weft_proxy_tcp_connections_closed_total", "weft_proxy_tcp_connections_opened_total"); err != nil {
		t.Error(err)
	}
}

func TestClusterBreakerStates(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	c := m.Cluster("api")
	c.BreakerState("10.0.0.1:21000", BreakerOpen)
	c.BreakerState("10.0.0.2:21000", BreakerHalfOpen)
	c.BreakerState("10.0.0.2:21000", BreakerClosed)
	db := m.Cluster("db")
	db.BreakerState("10.0.0.3:21000", BreakerOpen)
	db.Ejected()
	db.Retried()
	c.Ejected()
	m.ForgetHost("api", "10.0.0.1:21000")
	m.ForgetCluster("db")
	want := `
# HELP weft_proxy_breaker_state Per-host circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE weft_proxy_breaker_state gauge
weft_proxy_breaker_state{cluster="api",host="10.0.0.2:21000"} 0
# HELP weft_proxy_outlier_ejections_total Hosts ejected by outlier detection.
# TYPE weft_proxy_outlier_ejections_total counter
weft_proxy_outlier_ejections_total{cluster="api"} 1
# HELP weft_proxy_retries_total Retried request attempts.
# TYPE weft_proxy_retries_total counter
weft_proxy_retries_total{cluster="api"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"weft_proxy_breaker_state", "weft_proxy_outlier_ejections_total", "weft_proxy_retries_total"); err != nil {
		t.Error(err)
	}
	if m.Cluster("db") == db {
		t.Error("a forgotten cluster's handle is reused; want a new one counting into exported series")
	}
}

func TestXDSCountersByShortType(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.XDSAck("type.googleapis.com/envoy.config.cluster.v3.Cluster")
	m.XDSAck("type.googleapis.com/envoy.config.cluster.v3.Cluster")
	m.XDSNack("type.googleapis.com/envoy.config.route.v3.RouteConfiguration")
	if got := testutil.ToFloat64(m.xdsAcks.WithLabelValues("Cluster")); got != 2 {
		t.Errorf("Cluster ACKs = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.xdsNacks.WithLabelValues("RouteConfiguration")); got != 1 {
		t.Errorf("RouteConfiguration NACKs = %v, want 1", got)
	}
	// Every type starts at zero, so rate() and absent() work from the start.
	if got := testutil.CollectAndCount(m.xdsNacks); got != len(xdsTypes) {
		t.Errorf("%d NACK series, want %d", got, len(xdsTypes))
	}
}

func TestStatusIsReadAtScrapeTime(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	m.status.now = func() time.Time { return now }

	if got := testutil.CollectAndCount(m.status); got != 0 {
		t.Errorf("%d status metrics without callbacks, want 0", got)
	}
	connected, leaf := false, false
	m.SetStatus(Status{
		XDSConnected:     func() bool { return connected },
		CertExpiry:       func() (time.Time, bool) { return now.Add(90 * time.Second), leaf },
		AccessLogDropped: func() uint64 { return 7 },
	})
	want := func(expiry string) string {
		return `
# HELP weft_proxy_access_log_dropped_total Access-log lines dropped because the writer could not keep up.
# TYPE weft_proxy_access_log_dropped_total counter
weft_proxy_access_log_dropped_total 7
` + expiry + `# HELP weft_proxy_xds_connected 1 while the ADS stream to the control plane is up, else 0.
# TYPE weft_proxy_xds_connected gauge
weft_proxy_xds_connected ` + map[bool]string{true: "1", false: "0"}[connected] + "\n"
	}
	if err := testutil.CollectAndCompare(m.status, strings.NewReader(want(""))); err != nil {
		t.Errorf("before the first leaf, disconnected: %v", err)
	}
	connected, leaf = true, true
	if err := testutil.CollectAndCompare(m.status, strings.NewReader(want(`# HELP weft_proxy_cert_expiry_seconds Seconds until the leaf certificate expires.
# TYPE weft_proxy_cert_expiry_seconds gauge
weft_proxy_cert_expiry_seconds 90
`))); err != nil {
		t.Errorf("with a leaf, connected: %v", err)
	}
}

func TestShortType(t *testing.T) {
	for in, want := range map[string]string{
		"type.googleapis.com/envoy.config.listener.v3.Listener":                "Listener",
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "Secret",
		"plain": "plain",
	} {
		if got := shortType(in); got != want {
			t.Errorf("shortType(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkRouteObserve is the request path's metrics cost: a pre-resolved
// route handle, a common result.
func BenchmarkRouteObserve(b *testing.B) {
	m := New(prometheus.NewRegistry())
	r := m.Route(Inbound, "web", "api", ProtocolHTTP)
	for _, code := range []int{200, 201, 204, 404, 503} {
		r.Observe(code, "", "", time.Millisecond)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(404, "", "", 3*time.Millisecond)
		}
	})
}
