package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/syncbuf"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/traces"
)

// startCollector runs an OTLP/gRPC trace receiver on loopback and returns
// its address and the store its spans land in.
func startCollector(t *testing.T) (string, *traces.Store) {
	t.Helper()
	store := traces.NewStore(traces.Limits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, &traces.Receiver{Store: store})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), store
}

// lineBuffer is an access log's output.
type lineBuffer struct{ syncbuf.Buffer }

func (b *lineBuffer) entries(t *testing.T) []accesslog.Entry {
	t.Helper()
	var out []accesslog.Entry
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var e accesslog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// accessLogs opens an access log per sidecar of the mesh.
func accessLogs(t *testing.T) (map[string]*accesslog.Logger, map[string]*lineBuffer) {
	t.Helper()
	logs, bufs := map[string]*accesslog.Logger{}, map[string]*lineBuffer{}
	for _, node := range []string{webNode, apiNode} {
		bufs[node] = &lineBuffer{}
		logs[node] = accesslog.New(bufs[node], accesslog.Options{})
		t.Cleanup(logs[node].Close)
	}
	return logs, bufs
}

// metricsOf scrapes a sidecar's /metrics.
func (p *runningProxy) metricsOf() map[string]*dto.MetricFamily {
	p.t.Helper()
	code, body := p.adminGet("/metrics")
	if code != http.StatusOK {
		p.t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		p.t.Fatalf("/metrics: %v", err)
	}
	return mfs
}

// sum adds the values of family's series whose labels include want:
// counters' values, histograms' sample counts.
func sum(mfs map[string]*dto.MetricFamily, family string, want map[string]string) float64 {
	var total float64
	for _, m := range mfs[family].GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// TestMetricsCountEveryRequestUnderLoad: N concurrent requests through two
// sidecars are counted exactly N times on each side, per source,
// destination and status, and the latency histograms hold N samples.
func TestMetricsCountEveryRequestUnderLoad(t *testing.T) {
	logs, lines := accessLogs(t)
	m := newMeshTest(t, meshOptions{accessLogs: logs})
	const n, workers, failing = 600, 8, 40
	type side struct {
		name   string
		proxy  *runningProxy
		labels map[string]string
	}
	sides := []side{
		{"web outbound", m.web, map[string]string{"direction": "outbound", "source": "web", "destination": "api"}},
		{"api inbound", m.api, map[string]string{"direction": "inbound", "source": "web", "destination": "api"}},
	}
	before := map[string]map[string]*dto.MetricFamily{}
	for _, s := range sides {
		before[s.name] = s.proxy.metricsOf()
	}

	client := newClient()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	jobs := make(chan string, n)
	for i := range n {
		path := "/public"
		if i < failing {
			path = "/status/500"
		}
		jobs <- path
	}
	close(jobs)
	for range workers {
		wg.Go(func() {
			for path := range jobs {
				code, _, _, err := m.get(client, path)
				want := map[string]int{"/public": 200, "/status/500": 500}[path]
				if err != nil || code != want {
					errs <- fmt.Errorf("GET %s: %d, %v; want %d", path, code, err, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for _, s := range sides {
		after := s.proxy.metricsOf()
		delta := func(family string, extra map[string]string) float64 {
			labels := map[string]string{}
			for k, v := range s.labels {
				labels[k] = v
			}
			for k, v := range extra {
				labels[k] = v
			}
			return sum(after, family, labels) - sum(before[s.name], family, labels)
		}
		for _, c := range []struct {
			family string
			extra  map[string]string
			want   float64
		}{
			{"weft_proxy_requests_total", map[string]string{"code": "200", "reason": ""}, n - failing},
			{"weft_proxy_requests_total", map[string]string{"code": "500", "reason": ""}, failing},
			{"weft_proxy_requests_total", nil, n},
			{"weft_proxy_request_duration_seconds", nil, n},
		} {
			if got := delta(c.family, c.extra); got != c.want {
				t.Errorf("%s: %s%v grew by %v, want exactly %v", s.name, c.family, c.extra, got, c.want)
			}
		}
	}

	t.Run("one access-log line per request on each side", func(t *testing.T) {
		for node, l := range logs {
			l.Close() // flushes
			got := map[int]int{}
			for _, e := range lines[node].entries(t) {
				if e.Source != "web" || e.Destination != "api" {
					t.Errorf("%s: line from %q to %q, want web to api", node, e.Source, e.Destination)
				}
				if e.SourceID != serviceID(t, "web") || e.DestinationID.ID != serviceID(t, "api") {
					t.Errorf("%s: source_id %q, destination_id %q; want web's and api's SPIFFE IDs", node, e.SourceID, e.DestinationID.ID)
				}
				if node == webNode && e.UpstreamHost == "" {
					t.Errorf("%s: line without upstream_host", node)
				}
				got[e.Status]++
			}
			if want := map[int]int{200: n - failing, 500: failing}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: access-log lines by status %v, want %v", node, got, want)
			}
		}
	})
}

// TestTraceContextPropagation: an incoming W3C traceparent, or B3
// headers, are continued across both sidecars: same trace ID, the web
// sidecar's client span a child of the caller's span, api's server span a
// child of web's, and the app sees api's span as its parent.
func TestTraceContextPropagation(t *testing.T) {
	addr, store := startCollector(t)
	m := newMeshTest(t, meshOptions{collector: addr})
	const (
		traceID  = "4bf92f3577b34e11a0f0c8d6a1b2c3d4"
		callerID = "00f067aa0ba902b7"
	)
	tests := []struct {
		name    string
		headers map[string]string
		// check inspects what the app received.
		check func(t *testing.T, body string) (parentSeen string)
	}{
		{
			name:    "W3C traceparent",
			headers: map[string]string{"traceparent": "00-" + traceID + "-" + callerID + "-01"},
			check: func(t *testing.T, body string) string {
				tp := field(body, "traceparent")
				parts := strings.Split(tp, "-")
				if len(parts) != 4 || parts[1] != traceID || parts[3] != "01" {
					t.Fatalf("app got traceparent %q, want trace %s, sampled", tp, traceID)
				}
				return parts[2]
			},
		},
		{
			name:    "B3 multiple headers",
			headers: map[string]string{"x-b3-traceid": strings.Replace(traceID, "4bf9", "5bf9", 1), "x-b3-spanid": callerID, "x-b3-sampled": "1"},
			check: func(t *testing.T, body string) string {
				if got := field(body, "x-b3-traceid"); got != strings.Replace(traceID, "4bf9", "5bf9", 1) {
					t.Fatalf("app got x-b3-traceid %q: B3 callers must keep their trace", got)
				}
				return strings.Split(field(body, "traceparent"), "-")[2]
			},
		},
		{
			name:    "B3 single header",
			headers: map[string]string{"b3": strings.Replace(traceID, "4bf9", "6bf9", 1) + "-" + callerID + "-1"},
			check: func(t *testing.T, body string) string {
				b3 := strings.Split(field(body, "b3"), "-")
				if len(b3) < 2 || b3[0] != strings.Replace(traceID, "4bf9", "6bf9", 1) {
					t.Fatalf("app got b3 %q: B3 callers must keep their trace", field(body, "b3"))
				}
				return b3[1]
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+m.webAddr(webToAPI)+"/headers", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := newClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			appParent := tt.check(t, body.String())
			wantTrace := traceIDOf(tt.headers)

			var spans []traces.Span
			poll.UntilTrue(t, wait, "web's and api's spans at the collector", func() bool {
				spans, _ = store.Trace(wantTrace)
				return len(spans) >= 2
			})
			byService := map[string]traces.Span{}
			for _, s := range spans {
				byService[s.Service] = s
			}
			web, api := byService["web"], byService["api"]
			if web.Kind != "CLIENT" || web.ParentSpanID != callerID {
				t.Errorf("web span: kind %q, parent %q; want a client span, child of the caller's %s", web.Kind, web.ParentSpanID, callerID)
			}
			if api.Kind != "SERVER" || api.ParentSpanID != web.SpanID {
				t.Errorf("api span: kind %q, parent %q; want a server span, child of web's %s", api.Kind, api.ParentSpanID, web.SpanID)
			}
			if appParent != api.SpanID {
				t.Errorf("the app's parent span is %s, want api's server span %s", appParent, api.SpanID)
			}
		})
	}
}

func traceIDOf(h map[string]string) string {
	if tp := h["traceparent"]; tp != "" {
		return strings.Split(tp, "-")[1]
	}
	if b3 := h["b3"]; b3 != "" {
		return strings.Split(b3, "-")[0]
	}
	return h["x-b3-traceid"]
}

// field returns key's value in the app's "k=v k=v" answer.
func field(body, key string) string {
	for _, kv := range strings.Fields(body) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
