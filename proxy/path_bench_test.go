package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
)

// pathTelemetry is what a two-sidecar benchmark turns on.
type pathTelemetry struct {
	name string
	// sampling is the percent of new traces sampled; negative: no tracing.
	sampling  float64
	accessLog bool
}

// twoSidecars is the mesh's HTTP path as the control plane configures it
// for a service of protocol http: a client → web's outbound listener
// (HTTP/1.1) → mutual TLS, HTTP/1.1, pooled → api's public listener → the
// app. The relay between the sidecars counts their connections.
type twoSidecars struct {
	url   string
	relay *relay
}

func startTwoSidecars(b *testing.B, tel pathTelemetry) *twoSidecars {
	b.Helper()
	tl := newTestLog(b)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	b.Cleanup(backend.Close)
	certs := &certService{}
	certs.ca.Store(newCA(b))
	roots := bundle(certs.ca.Load())
	cp := startControlPlane(b, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, certs) })
	tracing := func(*hcmv3.HttpConnectionManager) {}
	var collector []types.Resource
	if tel.sampling >= 0 {
		tracing = func(h *hcmv3.HttpConnectionManager) {
			h.Tracing = xdstest.OpenTelemetryTracing(otlpCluster, "svc", tel.sampling)
		}
		collector = []types.Resource{xdstest.WithHTTP2(xdstest.StaticCluster(otlpCluster, xdstest.Endpoint(reachableCollector(b))))}
	}
	accessLog := func() *accesslog.Logger {
		if !tel.accessLog {
			return nil
		}
		l := accesslog.New(io.Discard, accesslog.Options{Logger: slog.New(slog.DiscardHandler)})
		b.Cleanup(l.Close)
		return l
	}

	public := xdstest.WithHCM(xdstest.WithListenerTLS(xdstest.Listener(publicHTTP, "127.0.0.1:0", xdstest.HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: xdstest.RouteConfig("local_app", "local_app")},
	})), xdstest.DownstreamTLS(trustDomain.String(), "http/1.1")), tracing)
	cp.setFor(apiNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {public},
		resourcev3.ClusterType:  append([]types.Resource{xdstest.StaticCluster("local_app", xdstest.Endpoint(backend.Listener.Addr().String()))}, collector...),
		resourcev3.SecretType:   {xdstest.RootsSecretOf(roots)},
	})
	quiet := slog.New(slog.DiscardHandler)
	api := startProxyWith(b, proxy.Options{ProxyID: apiNode, XDSAddrs: []string{cp.addr}, Token: aclToken, Logger: quiet, AccessLog: accessLog()})
	api.waitReady()
	rl := startRelay(b, api.listenerAddr(publicHTTP))

	upstream := xdstest.WithClusterTLS(xdstest.EDSCluster(apiHTTP), xdstest.UpstreamTLS(apiHTTP, serviceID(b, "api"), "http/1.1"))
	cp.setFor(webNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.WithHCM(xdstest.HTTPListenerRDS(webToAPI, "127.0.0.1:0", "api"), tracing)},
		resourcev3.RouteType:    {xdstest.RouteConfig("api", apiHTTP)},
		resourcev3.ClusterType:  append([]types.Resource{upstream}, collector...),
		resourcev3.EndpointType: {loadAssignment(apiHTTP, []string{rl.addr})},
		resourcev3.SecretType:   {xdstest.RootsSecretOf(roots)},
	})
	web := startProxyWith(b, proxy.Options{ProxyID: webNode, XDSAddrs: []string{cp.addr}, Token: aclToken, Logger: quiet, AccessLog: accessLog()})
	web.waitReady()
	return &twoSidecars{url: "http://" + web.listenerAddr(webToAPI) + "/items", relay: rl}
}

// BenchmarkTwoSidecarsHTTP sends GETs through two sidecars over mutual
// TLS, from parallel clients on keep-alive connections, with telemetry
// off, then as a sidecar runs by default (metrics, access log, tracing
// at the control plane's sampling). Besides ns/op and allocs/op (of both
// sidecars, the client and the app: compare the cases, not the absolute
// numbers), it reports the connections opened between the sidecars per
// 1,000 requests: the pool must reuse them, so it stays near zero.
//
//	go test -run '^$' -bench TwoSidecarsHTTP -benchmem -cpuprofile cpu.out ./proxy
func BenchmarkTwoSidecarsHTTP(b *testing.B) {
	for _, tel := range []pathTelemetry{
		{name: "bare", sampling: -1},
		{name: "metrics+accesslog", sampling: -1, accessLog: true},
		{name: "metrics+accesslog+trace1%", sampling: 1, accessLog: true},
		{name: "metrics+accesslog+trace100%", sampling: 100, accessLog: true},
	} {
		b.Run(tel.name, func(b *testing.B) {
			m := startTwoSidecars(b, tel)
			client := &http.Client{Timeout: wait, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.Cleanup(client.CloseIdleConnections)
			get := func() error {
				resp, err := client.Get(m.url)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
			if err := get(); err != nil { // warm the pools
				b.Fatal(err)
			}
			conns := m.relay.conns.Load()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(m.relay.conns.Load()-conns)*1000/float64(b.N), "upstream-conns/1k-req")
		})
	}
}

// BenchmarkTwoSidecarsGRPC makes unary gRPC calls through two sidecars
// (h2 over mutual TLS between them) from parallel callers on one client
// connection, with each HTTP/2 stack. allocs/op counts the gRPC client and
// server too: compare the stacks and commits, and read the sidecars' own
// share with -memprofile, focused on proxy/listener.
//
//	go test -run '^$' -bench TwoSidecarsGRPC -benchmem -memprofile mem.out ./proxy
func BenchmarkTwoSidecarsGRPC(b *testing.B) {
	for _, h2 := range []string{proxy.HTTP2Lean, proxy.HTTP2NetHTTP} {
		b.Run(h2, func(b *testing.B) {
			client := grpcMesh(b, h2)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			b.Cleanup(cancel)
			req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}}
			if _, err := client.UnaryCall(ctx, req); err != nil { // warm the pools
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.UnaryCall(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
