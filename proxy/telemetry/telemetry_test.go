package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weft-mesh/weft/proxy/internal/ready"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

const (
	webID = "spiffe://weft.local/ns/default/dc/dc1/svc/web"
	apiID = "spiffe://weft.local/ns/default/dc/dc1/svc/api"
	dbID  = "spiffe://weft.local/ns/default/dc/dc1/svc/db"
)

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: the handler did not return", what)
	}
}

// TestARequestThroughTwoSidecars sends app → web's outbound listener →
// api's inbound listener → api's app and checks all three signals on both
// hops: one trace, client span parent of server span; counters and
// histograms per source and destination; one access-log line per hop.
func TestARequestThroughTwoSidecars(t *testing.T) {
	var appTraceparent string
	app := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appTraceparent = r.Header.Get("traceparent")
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	}), nil)

	apiEnv, webEnv := newEnv(t), newEnv(t)
	apiTr, webTr := apiEnv.tracer(t, "api"), webEnv.tracer(t, "web")
	inbound, apiDone := done(apiEnv.tel.Wrap(forwarder(app.URL, "local_app"), Listener{
		Direction: metrics.Inbound, Service: "api", ServiceID: apiID, Route: "public_listener", Tracer: apiTr,
	}))
	apiSidecar := serve(t, inbound, &Peer{Service: "web", ID: webID})
	outbound, webDone := done(webEnv.tel.Wrap(forwarder(apiSidecar.URL, "api"), Listener{
		Direction: metrics.Outbound, Service: "web", ServiceID: webID, Peer: "api", PeerID: apiID, Route: "api:127.0.0.1:9191", Tracer: webTr,
	}))
	webSidecar := serve(t, outbound, nil)

	resp, err := http.Post(webSidecar.URL+"/items", "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("response %d %q", resp.StatusCode, body)
	}
	wait(t, apiDone, "api's sidecar")
	wait(t, webDone, "web's sidecar")

	// Traces: web's client span is the root, api's server span its child,
	// and the app is handed api's span as its parent.
	webSpans, apiSpans := webEnv.flushedSpans(t, webTr), apiEnv.flushedSpans(t, apiTr)
	if len(webSpans) != 1 || len(apiSpans) != 1 {
		t.Fatalf("spans: web %d, api %d; want 1 each", len(webSpans), len(apiSpans))
	}
	client, server := webSpans[0], apiSpans[0]
	if client.SpanKind != trace.SpanKindClient || client.Parent.IsValid() {
		t.Errorf("web's span: kind %v parent %v; want a root client span", client.SpanKind, client.Parent)
	}
	if server.SpanKind != trace.SpanKindServer || server.Parent.SpanID() != client.SpanContext.SpanID() || server.SpanContext.TraceID() != client.SpanContext.TraceID() {
		t.Errorf("api's span: kind %v parent %v; want a server span, child of %v", server.SpanKind, server.Parent, client.SpanContext)
	}
	if want := fmt.Sprintf("00-%s-%s-01", server.SpanContext.TraceID(), server.SpanContext.SpanID()); appTraceparent != want {
		t.Errorf("the app got traceparent %q, want %q", appTraceparent, want)
	}
	// Both spans are named by the route; the server span names its
	// verified caller.
	for _, s := range []struct {
		name  string
		attrs map[string]string
		want  map[string]string
	}{
		{client.Name, attrMap(client.Attributes), map[string]string{"http.route": "/*", "peer.service": "api", "weft.peer.spiffe_id": ""}},
		{server.Name, attrMap(server.Attributes), map[string]string{"http.route": "/*", "peer.service": "web", "weft.peer.spiffe_id": webID, "network.peer.address": "127.0.0.1"}},
	} {
		if s.name != "POST /*" {
			t.Errorf("span name %q, want POST /*", s.name)
		}
		for k, v := range s.want {
			if s.attrs[k] != v {
				t.Errorf("span %s: %s = %q, want %q", s.name, k, s.attrs[k], v)
			}
		}
	}

	// Metrics, per hop.
	for _, c := range []struct {
		e         *env
		direction string
	}{{webEnv, "outbound"}, {apiEnv, "inbound"}} {
		labels := map[string]string{"direction": c.direction, "source": "web", "destination": "api", "protocol": "http"}
		if got := c.e.counter(t, "weft_proxy_request_duration_seconds", labels); got != 1 {
			t.Errorf("%s: histogram count %v, want 1", c.direction, got)
		}
		labels["code"], labels["reason"], labels["grpc_status"] = "200", "", ""
		if got := c.e.counter(t, "weft_proxy_requests_total", labels); got != 1 {
			t.Errorf("%s: weft_proxy_requests_total%v = %v, want 1", c.direction, labels, got)
		}
	}

	// Access logs, per hop.
	ignore := cmpopts.IgnoreFields(accesslog.Entry{}, "Time", "DurationMS")
	wantWeb := accesslog.Entry{
		TraceID: accesslog.TraceID(client.SpanContext.TraceID()), SpanID: accesslog.SpanID(client.SpanContext.SpanID()),
		Direction: "outbound", Source: "web", SourceID: webID, Destination: "api", DestinationID: accesslog.Identity{ID: apiID}, Route: "api",
		UpstreamHost: strings.TrimPrefix(apiSidecar.URL, "http://"), Method: "POST", Path: "/items", Protocol: "http",
		Status: 200, BytesIn: 4, BytesOut: 5,
	}
	wantAPI := accesslog.Entry{
		TraceID: accesslog.TraceID(server.SpanContext.TraceID()), SpanID: accesslog.SpanID(server.SpanContext.SpanID()),
		Direction: "inbound", Source: "web", SourceID: webID, Destination: "api", DestinationID: accesslog.Identity{ID: apiID}, Route: "local_app",
		UpstreamHost: strings.TrimPrefix(app.URL, "http://"), Method: "POST", Path: "/items", Protocol: "http",
		Status: 200, BytesIn: 4, BytesOut: 5,
	}
	for _, c := range []struct {
		name string
		e    *env
		want accesslog.Entry
	}{{"web", webEnv, wantWeb}, {"api", apiEnv, wantAPI}} {
		lines := c.e.lines(t)
		if len(lines) != 1 {
			t.Fatalf("%s: %d access-log lines, want 1", c.name, len(lines))
		}
		if diff := cmp.Diff(c.want, lines[0], ignore); diff != "" {
			t.Errorf("%s's access log (-want +got):\n%s", c.name, diff)
		}
		if lines[0].DurationMS <= 0 || lines[0].Time.IsZero() {
			t.Errorf("%s: duration %v ms at %v", c.name, lines[0].DurationMS, lines[0].Time)
		}
	}
}

// TestReasons: a reason the sidecar generates, or one a peer sidecar
// answered with, is counted and traced (metrics label, span attribute and
// error) and logged; one an upstream made up is only logged.
func TestReasons(t *testing.T) {
	upstream := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Weft-Error", "rbac_denied")
		w.WriteHeader(http.StatusForbidden)
	}), nil)
	madeUp := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Weft-Error", "teapot_overheated")
		w.WriteHeader(http.StatusTeapot)
	}), nil)
	refused := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	tests := []struct {
		name       string
		next       http.Handler
		wantCode   int
		wantReason string // the metrics label: known reasons only
		wantLogged string
		wantEvents []string // the span's
	}{
		{
			name: "generated here",
			next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Weft-Error", "no_healthy_upstream")
				w.WriteHeader(http.StatusServiceUnavailable)
			}),
			wantCode: 503, wantReason: "no_healthy_upstream", wantLogged: "no_healthy_upstream", wantEvents: []string{"local_reply"},
		},
		{
			name:     "forwarded from the upstream sidecar",
			next:     forwarder(upstream.URL, "api"),
			wantCode: 403, wantReason: "rbac_denied", wantLogged: "rbac_denied",
		},
		{
			name:     "made up by the upstream",
			next:     forwarder(madeUp.URL, "api"),
			wantCode: 418, wantReason: "", wantLogged: "teapot_overheated",
		},
		{
			name: "connect failure",
			next: func() http.Handler {
				f := forwarder(refused, "api").(http.HandlerFunc)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					f(&connectFailureWriter{ResponseWriter: w}, r)
				})
			}(),
			wantCode: 503, wantReason: "connect_failure", wantLogged: "connect_failure", wantEvents: []string{"local_reply"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tr := e.tracer(t, "web")
			h, finished := done(e.tel.Wrap(tt.next, Listener{Direction: metrics.Outbound, Service: "web", Peer: "api", Tracer: tr}))
			srv := serve(t, h, nil)
			resp, err := http.Get(srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wait(t, finished, "sidecar")
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			labels := map[string]string{"code": fmt.Sprint(tt.wantCode), "reason": tt.wantReason}
			if got := e.counter(t, "weft_proxy_requests_total", labels); got != 1 {
				t.Errorf("weft_proxy_requests_total%v = %v, want 1", labels, got)
			}
			s := e.flushedSpans(t, tr)[0]
			var weftError string
			for _, kv := range s.Attributes {
				if kv.Key == "weft.error" {
					weftError = kv.Value.AsString()
				}
			}
			if weftError != tt.wantReason || (s.Status.Code == codes.Error) != (tt.wantReason != "") {
				t.Errorf("span weft.error %q status %v; want %q and error: %v", weftError, s.Status, tt.wantReason, tt.wantReason != "")
			}
			var events []string
			for _, ev := range s.Events {
				events = append(events, ev.Name)
			}
			if diff := cmp.Diff(tt.wantEvents, events); diff != "" {
				t.Errorf("span events (-want +got):\n%s", diff)
			}
			if got := e.lines(t)[0].WeftError; got != tt.wantLogged {
				t.Errorf("access log weft_error %q, want %q", got, tt.wantLogged)
			}
		})
	}
}

// connectFailureWriter stands in for the listener's upstream error
// handler: ReverseProxy's 502 becomes 503 connect_failure.
type connectFailureWriter struct{ http.ResponseWriter }

func (w *connectFailureWriter) WriteHeader(code int) {
	if code == http.StatusBadGateway {
		w.Header().Set("X-Weft-Error", "connect_failure")
		code = http.StatusServiceUnavailable
	}
	w.ResponseWriter.WriteHeader(code)
}

func TestGRPCStatus(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  string
	}{
		{"trailers-only", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "5")
			w.WriteHeader(200)
		}, "5"},
		{"declared trailer", func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(200)
			w.Write([]byte{0, 0, 0, 0, 0})
			w.Header().Set("Grpc-Status", "14")
		}, "14"},
		{"undeclared trailer, as ReverseProxy sets it", func(w http.ResponseWriter) {
			w.WriteHeader(200)
			w.Write([]byte{0, 0, 0, 0, 0})
			w.Header()[http.TrailerPrefix+"Grpc-Status"] = []string{"0"}
		}, "0"},
		{"none: the sidecar failed it", func(w http.ResponseWriter) {
			w.Header().Set("X-Weft-Error", "no_route")
			w.WriteHeader(503)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			h := e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.write(w) }),
				Listener{Direction: metrics.Inbound, Service: "api"})
			r := httptest.NewRequest(http.MethodPost, "http://api/shop.Cart/Add", nil)
			r.ProtoMajor, r.ProtoMinor = 2, 0
			r.Header.Set("Content-Type", "application/grpc")
			h.ServeHTTP(httptest.NewRecorder(), r)

			labels := map[string]string{"protocol": "grpc", "grpc_status": tt.want, "source": "unknown", "destination": "api"}
			if got := e.counter(t, "weft_proxy_requests_total", labels); got != 1 {
				t.Errorf("weft_proxy_requests_total%v = %v, want 1", labels, got)
			}
			if l := e.lines(t)[0]; l.GRPCStatus != tt.want || l.Protocol != "grpc" {
				t.Errorf("access log grpc_status %q protocol %q, want %q grpc", l.GRPCStatus, l.Protocol, tt.want)
			}
		})
	}
}

// TestGRPCOverHTTP1IsGRPC: a gRPC request is gRPC whatever its HTTP
// version: one over HTTP/1.1 is labelled grpc in metrics and the access
// log, and its span is an RPC span, as the sidecar's local replies treat
// it (proxy/grpcwire).
func TestGRPCOverHTTP1IsGRPC(t *testing.T) {
	e := newEnv(t)
	tr := e.tracer(t, "api")
	h, finished := done(e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
	}), Listener{Direction: metrics.Inbound, Service: "api", Tracer: tr}))
	srv := serve(t, h, nil) // HTTP/1.1 only: httptest does not offer h2c
	resp, err := http.Post(srv.URL+"/shop.Cart/Add", "application/grpc+proto", strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wait(t, finished, "sidecar")
	if resp.ProtoMajor != 1 {
		t.Fatalf("the request went over HTTP/%d, want HTTP/1.1", resp.ProtoMajor)
	}

	labels := map[string]string{"protocol": "grpc", "grpc_status": "0", "code": "200"}
	if got := e.counter(t, "weft_proxy_requests_total", labels); got != 1 {
		t.Errorf("weft_proxy_requests_total%v = %v, want 1", labels, got)
	}
	if l := e.lines(t)[0]; l.Protocol != "grpc" || l.GRPCStatus != "0" {
		t.Errorf("access log protocol %q grpc_status %q, want grpc 0", l.Protocol, l.GRPCStatus)
	}
	spans := e.flushedSpans(t, tr)
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	attrs := map[string]string{}
	for _, kv := range spans[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if spans[0].Name != "shop.Cart/Add" || attrs["rpc.system"] != "grpc" || attrs["rpc.service"] != "shop.Cart" || attrs["rpc.method"] != "Add" {
		t.Errorf("span %q with attributes %v, want the RPC span shop.Cart/Add (rpc.system grpc, rpc.service shop.Cart, rpc.method Add)", spans[0].Name, attrs)
	}
}

func TestUpgradeIsRecordedAs101(t *testing.T) {
	app := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString(line)
		brw.Flush()
	}), nil)
	e := newEnv(t)
	h, finished := done(e.tel.Wrap(forwarder(app.URL, "echo"), Listener{Direction: metrics.Inbound, Service: "echo"}))
	srv := serve(t, h, nil)

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: echo\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "hi\n")
	if echoed, _ := br.ReadString('\n'); echoed != "hi\n" {
		t.Errorf("tunnel echoed %q", echoed)
	}
	conn.Close()
	wait(t, finished, "upgrade")
	if l := e.lines(t)[0]; l.Status != 101 {
		t.Errorf("access log status %d, want 101", l.Status)
	}
}

func TestDownstreamGoneIsStatus0(t *testing.T) {
	started := make(chan struct{})
	e := newEnv(t)
	tr := e.tracer(t, "api")
	h, finished := done(e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // as ReverseProxy's error handler: nothing written
	}), Listener{Direction: metrics.Inbound, Service: "api", Tracer: tr}))
	srv := serve(t, h, nil)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	go func() {
		<-started
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request succeeded")
	}
	wait(t, finished, "handler")
	if l := e.lines(t)[0]; l.Status != 0 {
		t.Errorf("access log status %d, want 0", l.Status)
	}
	if got := e.counter(t, "weft_proxy_requests_total", map[string]string{"code": "0"}); got != 1 {
		t.Errorf("code=0 count %v, want 1", got)
	}
	if s := e.flushedSpans(t, tr)[0]; s.Status.Code != codes.Error {
		t.Errorf("span status %v, want error", s.Status)
	}
}

func TestAnAbortedResponseIsStillRecorded(t *testing.T) {
	e := newEnv(t)
	h, finished := done(e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		panic(http.ErrAbortHandler) // ReverseProxy: the upstream body broke
	}), Listener{Direction: metrics.Inbound, Service: "api"}))
	srv := serve(t, h, nil)
	srv.Config.ErrorLog = nil
	if resp, err := http.Get(srv.URL); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	wait(t, finished, "handler")
	if l := e.lines(t)[0]; l.Status != 200 || l.BytesOut != 7 {
		t.Errorf("access log status %d bytes_out %d, want 200 and 7", l.Status, l.BytesOut)
	}
}

// TestCountersEqualRequestsUnderLoad is the acceptance check "after N
// requests, counters equal N per source/destination/status, and the
// latency histogram count equals N", with concurrent requests from two
// sources over several connections.
func TestCountersEqualRequestsUnderLoad(t *testing.T) {
	e := newEnv(t)
	h, finished := done(e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
		}
	}), Listener{Direction: metrics.Inbound, Service: "api"}))
	sources := map[string]*httptest.Server{
		"web":   serve(t, h, &Peer{Service: "web", ID: webID}),
		"admin": serve(t, h, &Peer{Service: "admin"}),
	}
	const perSource, workers = 200, 4
	var wg sync.WaitGroup
	for _, srv := range sources {
		for w := range workers {
			wg.Go(func() {
				for i := range perSource / workers {
					path := "/"
					if (i+w)%4 == 0 {
						path = "/missing"
					}
					resp, err := srv.Client().Get(srv.URL + path)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				}
			})
		}
	}
	wg.Wait()
	for range 2 * perSource {
		wait(t, finished, "request")
	}
	lines := e.lines(t)
	if len(lines) != 2*perSource {
		t.Fatalf("%d access-log lines, want %d", len(lines), 2*perSource)
	}
	for src := range sources {
		ok := e.counter(t, "weft_proxy_requests_total", map[string]string{"source": src, "destination": "api", "code": "200"})
		missing := e.counter(t, "weft_proxy_requests_total", map[string]string{"source": src, "destination": "api", "code": "404"})
		hist := e.counter(t, "weft_proxy_request_duration_seconds", map[string]string{"source": src, "destination": "api"})
		if ok != 150 || missing != 50 || hist != perSource {
			t.Errorf("source %s: 200s %v, 404s %v, histogram count %v; want 150, 50, %d", src, ok, missing, hist, perSource)
		}
	}
}

func TestWithoutTelemetryTraceHeadersPassThrough(t *testing.T) {
	var got string
	h := (*Telemetry)(nil).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("traceparent")
	}), Listener{Direction: metrics.Outbound, Service: "web", Peer: "api"})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := httptest.NewRequest(http.MethodGet, "http://api/", nil)
	r.Header.Set("traceparent", tp)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got != tp || w.Code != 200 {
		t.Errorf("app got traceparent %q (status %d), want %q untouched", got, w.Code, tp)
	}
}

func TestTCPHooks(t *testing.T) {
	e := newEnv(t)
	hooks := e.tel.TCP(metrics.Inbound, "db", "")
	hooks.ConnOpened().Closed(100, 2000)
	for name, want := range map[string]float64{
		"weft_proxy_tcp_connections_opened_total": 1,
		"weft_proxy_tcp_connections_closed_total": 1,
	} {
		if got := e.counter(t, name, map[string]string{"direction": "inbound", "destination": "db"}); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := e.counter(t, "weft_proxy_tcp_bytes_total", map[string]string{"flow": "received"}); got != 100 {
		t.Errorf("received %v, want 100", got)
	}
	if got := e.counter(t, "weft_proxy_tcp_bytes_total", map[string]string{"flow": "sent"}); got != 2000 {
		t.Errorf("sent %v, want 2000", got)
	}
	var none TCPHooks
	none.ConnOpened().Closed(1, 1)
	(*Telemetry)(nil).TCP(metrics.Outbound, "x", "").ConnOpened().Closed(1, 1)
}

// TestTCPHooksOwnService: an inbound listener's destination is the
// sidecar's own service, known once the leaf certificate is.
func TestTCPHooksOwnService(t *testing.T) {
	e := newEnv(t)
	var local atomic.Pointer[string]
	empty := ""
	local.Store(&empty)
	e.tel.LocalID = func() string { return *local.Load() }
	hooks := e.tel.TCP(metrics.Inbound, "", "")
	hooks.ConnOpened().Closed(1, 1)
	id := dbID
	local.Store(&id)
	hooks.ConnOpened().Closed(1, 1)
	hooks.ConnOpened().Closed(1, 1)
	for dest, want := range map[string]float64{"unknown": 1, "db": 2} {
		if got := e.counter(t, "weft_proxy_tcp_connections_closed_total", map[string]string{"direction": "inbound", "destination": dest}); got != want {
			t.Errorf("closed{destination=%q} = %v, want %v", dest, got, want)
		}
	}
}

func TestPeerFromSPIFFE(t *testing.T) {
	for id, want := range map[string]string{
		webID:                       "web",
		"spiffe://weft.local/other": "",
		"":                          "",
	} {
		if got := PeerFromSPIFFE(id); got.Service != want || got.ID != id {
			t.Errorf("PeerFromSPIFFE(%q) = %+v, want service %q", id, got, want)
		}
	}
}

// TestOwnServiceFromLocalID: a listener without a Service of its own
// labels requests with the local identity's service once it has one.
func TestOwnServiceFromLocalID(t *testing.T) {
	e := newEnv(t)
	var local atomic.Pointer[string]
	none := ""
	local.Store(&none)
	e.tel.LocalID = func() string { return *local.Load() }
	app := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	h, finished := done(e.tel.Wrap(app, Listener{Direction: metrics.Outbound, Peer: "api"}))
	srv := serve(t, h, nil)
	get := func() {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wait(t, finished, "request")
	}
	get()
	id := webID
	local.Store(&id)
	get()
	get()
	for source, want := range map[string]float64{"unknown": 1, "web": 2} {
		if got := e.counter(t, "weft_proxy_requests_total", map[string]string{"direction": "outbound", "source": source, "destination": "api"}); got != want {
			t.Errorf("requests from %q = %v, want %v", source, got, want)
		}
	}
}

// arrivedBody is a request body that arrived whole, and says so.
type arrivedBody struct{ *strings.Reader }

func (b arrivedBody) Ready() (int, bool) { return b.Len(), true }
func (arrivedBody) Close() error         { return nil }

// TestRequestBodyTellsWhatArrived: the body the handler gets, which
// counts bytes for the access log, still says what has arrived
// (ready.Reporter), so that the HTTP/2 client sends a request that
// arrived whole in one write.
func TestRequestBodyTellsWhatArrived(t *testing.T) {
	e := newEnv(t)
	var n int
	var end bool
	h := e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, end = ready.Of(r.Body)
		io.Copy(io.Discard, r.Body)
	}), Listener{Direction: metrics.Inbound, Service: "api"})
	req := httptest.NewRequest("POST", "/", nil)
	req.Body = arrivedBody{strings.NewReader("whole")}
	h.ServeHTTP(httptest.NewRecorder(), req)
	if n != 5 || !end {
		t.Errorf("the handler's body reports %d bytes, end %v; want the source's 5, true", n, end)
	}
}
