package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/traces"
)

// tracedSidecar runs one sidecar whose outbound HTTP listener traces every
// request (100 % sampling) to the collector at collector, in front of a
// backend that answers "ok". It returns the listener's URL.
func tracedSidecar(b *testing.B, collector string) string {
	b.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	b.Cleanup(backend.Close)
	tl := newTestLog(b)
	cp := startControlPlane(b, tl, "127.0.0.1:0")
	const listenerName = "api:127.0.0.1:0"
	cp.setFor(nodeID, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.WithHCM(xdstest.HTTPListenerRDS(listenerName, "127.0.0.1:0", "api"), func(h *hcmv3.HttpConnectionManager) {
			h.Tracing = xdstest.OpenTelemetryTracing(otlpCluster, "web", 100)
		})},
		resourcev3.RouteType: {xdstest.RouteConfig("api", "api")},
		resourcev3.ClusterType: {
			xdstest.StaticCluster("api", xdstest.Endpoint(backend.Listener.Addr().String())),
			xdstest.WithHTTP2(xdstest.StaticCluster(otlpCluster, xdstest.Endpoint(collector))),
		},
	})
	p := startProxyWith(b, proxy.Options{ProxyID: nodeID, XDSAddrs: []string{cp.addr}, Logger: slog.New(slog.DiscardHandler)})
	p.waitReady()
	return "http://" + p.listenerAddr(listenerName) + "/items"
}

// reachableCollector is a healthy OTLP/gRPC collector.
func reachableCollector(b testing.TB) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, &traces.Receiver{Store: traces.NewStore(traces.Limits{})})
	go srv.Serve(ln)
	b.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// refusedCollector is an address where nothing listens.
func refusedCollector(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// BenchmarkCollectorDown sends each iteration's request through three
// sidecars alike but for their collector — reachable, black-holed (it
// accepts and never answers) and refusing connections — interleaved, so
// that machine noise hits all three alike. Every request must succeed; it
// reports each sidecar's p50 and p99 latency and the p99 change of each
// down collector against the reachable one (p99-change-%: export never
// runs on the request path, so it should stay within noise).
func BenchmarkCollectorDown(b *testing.B) {
	sidecars := []struct {
		name string
		url  string
		lat  []time.Duration
	}{
		{name: "reachable", url: tracedSidecar(b, reachableCollector(b))},
		{name: "blackhole", url: tracedSidecar(b, testnet.BlackHole(b))},
		{name: "refused", url: tracedSidecar(b, refusedCollector(b))},
	}
	client := &http.Client{Timeout: wait, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	failed := 0
	for b.Loop() {
		for i := range sidecars {
			s := &sidecars[i]
			start := time.Now()
			resp, err := client.Get(s.url)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			s.lat = append(s.lat, time.Since(start))
			if err != nil {
				failed++
				b.Errorf("collector %s: request failed: %v", s.name, err)
			}
		}
	}
	if failed > 0 {
		b.Fatalf("%d requests failed; want 0 whatever the collector's state", failed)
	}
	var p99Reachable float64
	for _, s := range sidecars {
		p50, p99 := percentile(s.lat, 0.50), percentile(s.lat, 0.99)
		b.ReportMetric(p50, "p50-µs/"+s.name)
		b.ReportMetric(p99, "p99-µs/"+s.name)
		if s.name == "reachable" {
			p99Reachable = p99
		} else if p99Reachable > 0 {
			b.ReportMetric(100*(p99-p99Reachable)/p99Reachable, "p99-change-%/"+s.name)
		}
	}
}

// percentile returns the q-quantile of lat in microseconds.
func percentile(lat []time.Duration, q float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds())
}
