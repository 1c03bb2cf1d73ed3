package tracing

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/traces"
)

// startGRPCCollector runs a real OTLP/gRPC receiver on loopback.
func startGRPCCollector(t *testing.T) (addr string, store *traces.Store) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store = traces.NewStore(traces.Limits{})
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, &traces.Receiver{Store: store})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), store
}

// startHTTPCollector runs a real OTLP/HTTP receiver on loopback.
func startHTTPCollector(t *testing.T) (addr string, store *traces.Store) {
	t.Helper()
	store = traces.NewStore(traces.Limits{})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/traces", &traces.Receiver{Store: store})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), store
}

// hop sends one request through two sidecars' spans, as web's outbound
// listener and api's inbound listener would: the app's request without
// context, web's client span, the headers on the wire, api's server span.
func hop(web, api *Tracer, status int) (clientSpan, serverSpan string) {
	appReq := newRequest(http.MethodGet, "http://127.0.0.1:9191/items", nil)
	ctx, client := web.StartClient(Extract(appReq.Context(), appReq.Header), appReq, Attrs{PeerService: "api"})
	Inject(ctx, appReq.Header)

	wire := newRequest(http.MethodGet, "https://api/items", appReq.Header.Clone())
	sctx, server := api.StartServer(Extract(context.Background(), wire.Header), wire, Attrs{PeerService: "web"})
	Inject(sctx, wire.Header)
	server.End(Result{Status: status, UpstreamHost: "127.0.0.1:9001"})
	client.End(Result{Status: status, UpstreamHost: "127.0.0.1:21001"})
	return client.SpanContext().SpanID().String(), server.SpanContext().SpanID().String()
}

func TestSpansReachARealCollectorWithParentLinks(t *testing.T) {
	for _, proto := range []Protocol{GRPC, HTTP} {
		t.Run(proto.String(), func(t *testing.T) {
			var addr string
			var store *traces.Store
			if proto == GRPC {
				addr, store = startGRPCCollector(t)
			} else {
				addr, store = startHTTPCollector(t)
			}
			ps := NewProviders(Options{
				Resolve: func(cluster string) (string, bool) { return addr, cluster == "weft-otlp" },
				Logger:  testLogger(t),
			})
			t.Cleanup(func() { ps.Close(context.Background()) })
			acquire := func(service string) *Tracer {
				tr, err := ps.Acquire(&Config{Collector: Collector{Protocol: proto, Cluster: "weft-otlp", Path: DefaultHTTPPath}, ServiceName: service, SamplingRatio: 1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(tr.Release)
				return tr
			}
			web, api := acquire("web"), acquire("api")

			clientID, serverID := hop(web, api, http.StatusServiceUnavailable)
			for _, tr := range []*Tracer{web, api} {
				if err := tr.ForceFlush(context.Background()); err != nil {
					t.Fatalf("flush: %v", err)
				}
			}

			sums := store.Search(traces.Filter{})
			if len(sums) != 1 {
				t.Fatalf("collector holds %d traces, want 1", len(sums))
			}
			spans, _ := store.Trace(sums[0].TraceID)
			byID := map[string]traces.Span{}
			for _, s := range spans {
				byID[s.SpanID] = s
			}
			c, s := byID[clientID], byID[serverID]
			switch {
			case len(spans) != 2:
				t.Fatalf("trace has %d spans, want 2: %+v", len(spans), spans)
			case c.Service != "web" || c.Kind != "CLIENT" || c.ParentSpanID != "":
				t.Errorf("web's span: %+v; want the root CLIENT span of service web", c)
			case s.Service != "api" || s.Kind != "SERVER" || s.ParentSpanID != clientID:
				t.Errorf("api's span: %+v; want a SERVER span of service api, child of %s", s, clientID)
			case !c.Error || !s.Error:
				t.Errorf("503 spans not marked as errors: web %v, api %v", c.Error, s.Error)
			case s.Attributes["http.response.status_code"] != "503" || s.Attributes["peer.service"] != "web":
				t.Errorf("api's span attributes: %v", s.Attributes)
			}
		})
	}
}
