package tracing

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID = "00f067aa0ba902b7"
	webID    = "spiffe://weft.local/ns/default/dc/dc1/svc/web"
)

func TestServerSpanStartsATraceWithoutContext(t *testing.T) {
	mp := newMemProviders(t)
	tr := mp.acquire(t, "api", 1)
	r := newRequest(http.MethodGet, "http://api.internal:8080/items?id=1", nil)

	r.RemoteAddr = "10.0.0.7:43210"

	ctx, span := tr.StartServer(Extract(r.Context(), r.Header), r, Attrs{PeerService: "web", PeerID: webID})
	Inject(ctx, r.Header)
	span.SetRoute("/items*")
	span.End(Result{Status: http.StatusOK, UpstreamHost: "127.0.0.1:9001", Attempts: 1})

	spans := flushed(t, tr, mp.exporter(0))
	if len(spans) != 1 {
		t.Fatalf("exported %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Parent.IsValid() || s.SpanKind != trace.SpanKindServer || s.Name != "GET /items*" || s.Status.Code != codes.Unset {
		t.Errorf("span: parent %v, kind %v, name %q, status %v; want a root SERVER span GET /items* with status Unset", s.Parent, s.SpanKind, s.Name, s.Status)
	}
	// The network peer is the caller; the upstream (the app) has its own
	// attribute; one attempt is not a resend.
	want := map[string]string{
		"http.request.method":       "GET",
		"url.path":                  "/items",
		"http.route":                "/items*",
		"server.address":            "api.internal",
		"server.port":               "8080",
		"network.protocol.version":  "1.1",
		"network.peer.address":      "10.0.0.7",
		"network.peer.port":         "43210",
		"peer.service":              "web",
		"weft.peer.spiffe_id":       webID,
		"http.response.status_code": "200",
		"weft.upstream.address":     "127.0.0.1:9001",
	}
	if diff := cmp.Diff(want, attrMap(s.Attributes)); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if got := attrMap(s.Resource.Attributes())["service.name"]; got != "api" {
		t.Errorf("service.name = %q, want api", got)
	}
	wantParent := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"
	if got := r.Header.Get("traceparent"); got != wantParent {
		t.Errorf("injected traceparent = %q, want %q (the server span)", got, wantParent)
	}
}

func TestClientSpanContinuesTheAppsW3CContext(t *testing.T) {
	mp := newMemProviders(t)
	tr := mp.acquire(t, "web", 0) // a sampled parent is followed whatever the ratio
	r := newRequest(http.MethodPost, "http://127.0.0.1:9191/orders", http.Header{
		"Traceparent": {"00-" + traceID + "-" + parentID + "-01"},
		"Tracestate":  {"vendor=opaque"},
	})

	ctx, span := tr.StartClient(Extract(r.Context(), r.Header), r, Attrs{PeerService: "api", ServerAddress: "api"})
	Inject(ctx, r.Header)
	span.SetRoute("/orders")
	span.End(Result{Status: http.StatusCreated, UpstreamHost: "10.0.0.9:21000", UpstreamInstance: "api-2-sidecar-proxy", Attempts: 3})

	s := flushed(t, tr, mp.exporter(0))[0]
	if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != parentID || !s.Parent.IsRemote() {
		t.Errorf("span trace %s parent %s, want trace %s parent %s (remote)", s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, parentID)
	}
	if s.SpanKind != trace.SpanKindClient {
		t.Errorf("kind = %v, want client", s.SpanKind)
	}
	// The server is the service the app addressed (at its port); the
	// network peer is the instance the sidecar sent the request to.
	want := map[string]string{
		"http.request.method":       "POST",
		"url.path":                  "/orders",
		"http.route":                "/orders",
		"server.address":            "api",
		"server.port":               "9191",
		"network.protocol.version":  "1.1",
		"peer.service":              "api",
		"http.response.status_code": "201",
		"weft.upstream.address":     "10.0.0.9:21000",
		"weft.upstream.instance_id": "api-2-sidecar-proxy",
		"network.peer.address":      "10.0.0.9",
		"network.peer.port":         "21000",
		"http.request.resend_count": "2",
	}
	if diff := cmp.Diff(want, attrMap(s.Attributes)); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if s.Name != "POST /orders" {
		t.Errorf("name %q, want POST /orders", s.Name)
	}
	if got, want := r.Header.Get("traceparent"), "00-"+traceID+"-"+s.SpanContext.SpanID().String()+"-01"; got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
	if got := r.Header.Get("tracestate"); got != "vendor=opaque" {
		t.Errorf("tracestate = %q, want it kept", got)
	}
}

func TestB3IsAcceptedAndAnsweredInKind(t *testing.T) {
	tests := []struct {
		name      string
		in        http.Header
		wantB3    bool // the single header is written
		wantMulti bool // the X-B3-* headers are written
	}{
		{"single header", http.Header{"B3": {traceID + "-" + parentID + "-1"}}, true, false},
		{"multiple headers", http.Header{
			"X-B3-Traceid": {traceID}, "X-B3-Spanid": {parentID}, "X-B3-Sampled": {"1"}, "X-B3-Parentspanid": {"1111111111111111"},
		}, false, true},
		{"both", http.Header{
			"B3":           {traceID + "-" + parentID + "-1"},
			"X-B3-Traceid": {traceID}, "X-B3-Spanid": {parentID}, "X-B3-Sampled": {"1"},
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := newMemProviders(t)
			tr := mp.acquire(t, "api", 0)
			r := newRequest(http.MethodGet, "http://api/", tt.in)

			ctx, span := tr.StartServer(Extract(r.Context(), r.Header), r, Attrs{})
			Inject(ctx, r.Header)
			span.End(Result{Status: 200})

			s := flushed(t, tr, mp.exporter(0))[0]
			if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != parentID {
				t.Fatalf("span trace %s parent %s, want the B3 context %s/%s", s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, parentID)
			}
			spanID := s.SpanContext.SpanID().String()
			if got, want := r.Header.Get("traceparent"), "00-"+traceID+"-"+spanID+"-01"; got != want {
				t.Errorf("traceparent = %q, want %q", got, want)
			}
			if got, want := r.Header.Get("b3"), traceID+"-"+spanID+"-1"; tt.wantB3 != (got == want) {
				t.Errorf("b3 = %q; want it written: %v", got, tt.wantB3)
			}
			if got := r.Header.Get("x-b3-spanid"); tt.wantMulti != (got == spanID) {
				t.Errorf("x-b3-spanid = %q; want %s written: %v", got, spanID, tt.wantMulti)
			}
			if got := r.Header.Get("x-b3-parentspanid"); got != "" {
				t.Errorf("x-b3-parentspanid = %q: a stale parent was forwarded", got)
			}
		})
	}
}

func TestW3CWinsOverB3(t *testing.T) {
	h := http.Header{
		"Traceparent": {"00-" + traceID + "-" + parentID + "-01"},
		"B3":          {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-1"},
	}
	ctx := Extract(context.Background(), h)
	sc := trace.SpanContextFromContext(ctx)
	if sc.TraceID().String() != traceID {
		t.Errorf("extracted trace %s, want the W3C one %s", sc.TraceID(), traceID)
	}
	// The B3 header leaves rewritten, never naming the caller's older span.
	Inject(ctx, h)
	if got, want := h.Get("b3"), traceID+"-"+parentID+"-1"; got != want {
		t.Errorf("b3 = %q after Inject, want %q (the W3C context it continues)", got, want)
	}
}

func TestInvalidContextStartsANewTrace(t *testing.T) {
	for _, h := range []http.Header{
		{"Traceparent": {"00-00000000000000000000000000000000-" + parentID + "-01"}},
		{"B3": {"garbage"}},
		{"X-B3-Traceid": {"zz"}},
	} {
		if sc := trace.SpanContextFromContext(Extract(context.Background(), h)); sc.IsValid() {
			t.Errorf("Extract(%v) = %v, want no context", h, sc)
		}
	}
}

func TestSamplingIsParentBased(t *testing.T) {
	sampled := "00-" + traceID + "-" + parentID + "-01"
	unsampled := "00-" + traceID + "-" + parentID + "-00"
	tests := []struct {
		name        string
		ratio       float64
		traceparent string
		wantSampled bool
	}{
		{"root, ratio 1", 1, "", true},
		{"root, ratio 0", 0, "", false},
		{"sampled parent, ratio 0", 0, sampled, true},
		{"unsampled parent, ratio 1", 1, unsampled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := newMemProviders(t)
			tr := mp.acquire(t, "web", tt.ratio)
			r := newRequest(http.MethodGet, "http://api/", nil)
			if tt.traceparent != "" {
				r.Header.Set("traceparent", tt.traceparent)
			}
			ctx, span := tr.StartClient(Extract(r.Context(), r.Header), r, Attrs{})
			Inject(ctx, r.Header)
			span.End(Result{Status: 200})

			if got := len(flushed(t, tr, mp.exporter(0))); got != map[bool]int{true: 1, false: 0}[tt.wantSampled] {
				t.Errorf("exported %d spans; want sampled: %v", got, tt.wantSampled)
			}
			// The decision travels on, sampled or not, so the next hop follows it.
			flags := strings.TrimPrefix(r.Header.Get("traceparent")[53:], "-")
			if want := map[bool]string{true: "01", false: "00"}[tt.wantSampled]; flags != want {
				t.Errorf("traceparent %q: flags %q, want %q", r.Header.Get("traceparent"), flags, want)
			}
		})
	}
}

func TestSpanStatus(t *testing.T) {
	tests := []struct {
		name      string
		req       *http.Request
		res       Result
		wantError bool
		wantAttrs map[string]string // a subset
	}{
		{"200", newRequest("GET", "http://api/", nil), Result{Status: 200}, false, nil},
		{"404 is the app's answer, not a failure", newRequest("GET", "http://api/", nil), Result{Status: 404}, false, map[string]string{"http.response.status_code": "404"}},
		{"503 from the app", newRequest("GET", "http://api/", nil), Result{Status: 503}, true, map[string]string{"error.type": "503"}},
		{"403 rbac_denied from the sidecar", newRequest("GET", "http://api/", nil), Result{Status: 403, Reason: "rbac_denied"}, true,
			map[string]string{"weft.error": "rbac_denied", "error.type": "rbac_denied"}},
		{"403 direct response: the route's own answer", newRequest("GET", "http://api/", nil), Result{Status: 403, Reason: "direct_response"}, false,
			map[string]string{"weft.error": "direct_response", "http.response.status_code": "403"}},
		{"503 direct response", newRequest("GET", "http://api/", nil), Result{Status: 503, Reason: "direct_response"}, true,
			map[string]string{"weft.error": "direct_response", "error.type": "direct_response"}},
		{"no response", newRequest("GET", "http://api/", nil), Result{}, true, map[string]string{"error.type": "no_response"}},
		{"gRPC OK", grpcRequest("/shop.Cart/Add"), Result{Status: 200, GRPCStatus: "0"}, false,
			map[string]string{"rpc.system": "grpc", "rpc.service": "shop.Cart", "rpc.method": "Add", "rpc.grpc.status_code": "0"}},
		{"gRPC NOT_FOUND", grpcRequest("/shop.Cart/Add"), Result{Status: 200, GRPCStatus: "5"}, false, map[string]string{"rpc.grpc.status_code": "5"}},
		{"gRPC UNAVAILABLE", grpcRequest("/shop.Cart/Add"), Result{Status: 200, GRPCStatus: "14"}, true, map[string]string{"rpc.grpc.status_code": "14", "error.type": "14"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := newMemProviders(t)
			tr := mp.acquire(t, "api", 1)
			_, span := tr.StartServer(tt.req.Context(), tt.req, Attrs{})
			span.End(tt.res)
			s := flushed(t, tr, mp.exporter(0))[0]
			if got := s.Status.Code == codes.Error; got != tt.wantError {
				t.Errorf("status = %v; want error: %v", s.Status, tt.wantError)
			}
			attrs := attrMap(s.Attributes)
			for k, v := range tt.wantAttrs {
				if attrs[k] != v {
					t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
				}
			}
			if _, ok := attrs["weft.error"]; ok != (tt.res.Reason != "") {
				t.Errorf("weft.error present: %v, want %v", ok, tt.res.Reason != "")
			}
			if strings.HasPrefix(tt.req.Header.Get("Content-Type"), "application/grpc") && s.Name != "shop.Cart/Add" {
				t.Errorf("gRPC span name %q, want shop.Cart/Add", s.Name)
			}
		})
	}
}

func TestNilTracerTracesNothing(t *testing.T) {
	var tr *Tracer
	r := newRequest("GET", "http://api/", nil)
	ctx, span := tr.StartServer(r.Context(), r, Attrs{})
	if ctx != r.Context() || span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("a nil Tracer started a span")
	}
	span.AddEvent("retry")
	span.End(Result{Status: 200})
	Inject(ctx, r.Header)
	if len(r.Header) != 0 {
		t.Errorf("headers %v written without a span", r.Header)
	}
	tr.Release()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestProvidersAreSharedAndFlushedOnLastRelease(t *testing.T) {
	mp := newMemProviders(t)
	web1, web2 := mp.acquire(t, "web", 1), mp.acquire(t, "web", 1)
	api := mp.acquire(t, "api", 1)
	if got := mp.count(); got != 2 {
		t.Fatalf("%d exporters for services web, web, api; want 2 (one per service)", got)
	}
	webExp := mp.exporter(0)

	r := newRequest("GET", "http://api/", nil)
	_, span := web1.StartClient(r.Context(), r, Attrs{})
	span.End(Result{Status: 200})
	web1.Release()
	web1.Release() // idempotent: must not release web2's hold
	select {
	case <-webExp.shutdown:
		t.Fatal("provider shut down while web2 still holds it")
	default:
	}
	_, span = web2.StartClient(r.Context(), r, Attrs{})
	span.End(Result{Status: 200})
	web2.Release()

	select {
	case <-webExp.shutdown:
	case <-time.After(10 * time.Second):
		t.Fatal("provider not shut down after its last Tracer was released")
	}
	if got := len(webExp.spans()); got != 2 {
		t.Errorf("%d spans exported by shutdown, want both queued spans flushed", got)
	}
	select {
	case <-mp.exporter(1).shutdown:
		t.Error("api's provider was shut down too")
	default:
	}

	// A new Tracer for web gets a new provider.
	mp.acquire(t, "web", 1)
	if got := mp.count(); got != 3 {
		t.Errorf("%d exporters, want a new one for web", got)
	}
	_ = api
}

func TestSamplingRatioChangesInPlace(t *testing.T) {
	mp := newMemProviders(t)
	old := mp.acquire(t, "web", 0)
	newer := mp.acquire(t, "web", 1) // the new config: same provider, new ratio
	if mp.count() != 1 {
		t.Fatal("a ratio change built a new provider")
	}
	old.Release()
	r := newRequest("GET", "http://api/", nil)
	_, span := newer.StartClient(r.Context(), r, Attrs{})
	if !span.IsRecording() {
		t.Error("span not sampled at ratio 1")
	}
	span.End(Result{Status: 200})
}

// TestCurrent: a Tracer is current for a config while the config's
// collector resolves to its provider's endpoint and the service name is
// its provider's; no Tracer is current for no config or a collector that
// does not resolve.
func TestCurrent(t *testing.T) {
	mp := newMemProviders(t)
	web := mp.acquire(t, "web", 1)
	tests := []struct {
		name string
		t    *Tracer
		cfg  *Config
		want bool
	}{
		{"same collector and service", web, &Config{Collector: Collector{Cluster: "otel"}, ServiceName: "web", SamplingRatio: 0.5}, true},
		{"another service", web, &Config{Collector: Collector{Cluster: "otel"}, ServiceName: "api"}, false},
		{"another address", web, &Config{Collector: Collector{Address: "127.0.0.2:4317"}, ServiceName: "web"}, false},
		{"a collector that does not resolve", web, &Config{Collector: Collector{Cluster: "missing"}}, false},
		{"no tracer, a collector that does not resolve", nil, &Config{Collector: Collector{Cluster: "missing"}}, true},
		{"no tracer, a collector that resolves", nil, &Config{Collector: Collector{Cluster: "otel"}}, false},
		{"no tracer, no config", nil, nil, true},
		{"a tracer, no config", web, nil, false},
	}
	for _, tt := range tests {
		if got := mp.Current(tt.t, tt.cfg); got != tt.want {
			t.Errorf("%s: Current = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAcquireErrors(t *testing.T) {
	mp := newMemProviders(t)
	if tr, err := mp.Acquire(nil); tr != nil || err != nil {
		t.Errorf("Acquire(nil) = %v, %v; want nil, nil", tr, err)
	}
	_, err := mp.Acquire(&Config{Collector: Collector{Cluster: "missing"}})
	if err == nil || !strings.Contains(err.Error(), `collector cluster "missing"`) {
		t.Errorf("unknown cluster: err = %v", err)
	}
	if err := mp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.Acquire(&Config{Collector: Collector{Address: "127.0.0.1:4317"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

func TestDefaultServiceNameAndResource(t *testing.T) {
	mp := newMemProviders(t)
	tr, err := mp.Acquire(&Config{Collector: Collector{Address: "otel:4317"}, SamplingRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	if got := mp.exporter(0).endpoint; got != (Endpoint{Protocol: GRPC, Address: "otel:4317", Timeout: DefaultExportTimeout}) {
		t.Errorf("endpoint = %+v", got)
	}
	r := newRequest("GET", "http://api/", nil)
	_, span := tr.StartServer(r.Context(), r, Attrs{})
	span.End(Result{Status: 200})
	s := flushed(t, tr, mp.exporter(0))[0]
	if got := attrMap(s.Resource.Attributes())["service.name"]; got != DefaultServiceName {
		t.Errorf("service.name = %q, want %q", got, DefaultServiceName)
	}
}
