package traces

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// chain is web → api → db: three services, the db call failing.
func chain(traceID string, start time.Time) []Span {
	return []Span{
		{TraceID: traceID, SpanID: "01", Service: "web", Name: "GET /", Kind: "SERVER", Start: start, End: start.Add(30 * time.Millisecond)},
		{TraceID: traceID, SpanID: "02", ParentSpanID: "01", Service: "web", Name: "GET api", Kind: "CLIENT", Start: start.Add(2 * time.Millisecond), End: start.Add(28 * time.Millisecond)},
		{TraceID: traceID, SpanID: "03", ParentSpanID: "02", Service: "api", Name: "GET /items", Kind: "SERVER", Start: start.Add(3 * time.Millisecond), End: start.Add(27 * time.Millisecond)},
		{TraceID: traceID, SpanID: "04", ParentSpanID: "03", Service: "db", Name: "query", Kind: "SERVER", Start: start.Add(5 * time.Millisecond), End: start.Add(25 * time.Millisecond), Error: true},
	}
}

func TestSearchFilters(t *testing.T) {
	s := NewStore(Limits{})
	s.Add(chain("aa", t0))
	s.Add([]Span{{TraceID: "bb", SpanID: "01", Service: "web", Name: "GET /fast", Start: t0.Add(time.Second), End: t0.Add(time.Second + time.Millisecond)}})
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all, newest first", Filter{}, []string{"bb", "aa"}},
		{"service db", Filter{Service: "db"}, []string{"aa"}},
		{"min duration", Filter{MinDuration: 10 * time.Millisecond}, []string{"aa"}},
		{"errors only", Filter{ErrorsOnly: true}, []string{"aa"}},
		{"limit", Filter{Limit: 1}, []string{"bb"}},
		{"no match", Filter{Service: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range s.Search(tt.f) {
				got = append(got, s.TraceID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	sum := s.Search(Filter{Service: "db"})[0]
	if sum.RootService != "web" || sum.SpanCount != 4 || !sum.Error || sum.Duration != 30*time.Millisecond {
		t.Fatalf("summary = %+v", sum)
	}
}

func TestStoreIsBounded(t *testing.T) {
	s := NewStore(Limits{MaxTraces: 2, MaxSpansPerTrace: 3})
	s.Add(chain("aa", t0))
	s.Add(chain("bb", t0))
	s.Add(chain("cc", t0))
	if s.Len() != 2 {
		t.Fatalf("held %d traces, want 2", s.Len())
	}
	if _, ok := s.Trace("aa"); ok {
		t.Fatal("oldest trace not evicted")
	}
	if spans, _ := s.Trace("cc"); len(spans) != 3 || s.Dropped() != 3 {
		t.Fatalf("trace cc has %d spans, dropped %d; want 3 and 3", len(spans), s.Dropped())
	}
}

func TestWaterfall(t *testing.T) {
	spans := chain("aa", t0)
	spans[0], spans[3] = spans[3], spans[0] // arrival order must not matter
	spans = append(spans, Span{TraceID: "aa", SpanID: "05", ParentSpanID: "05", Service: "x", Start: t0, End: t0})
	var got []string
	for _, r := range Waterfall(spans) {
		got = append(got, strings.Repeat(" ", r.Depth)+r.Service+":"+r.Name)
	}
	want := []string{"web:GET /", " web:GET api", "  api:GET /items", "   db:query", "x:"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("waterfall (-want +got):\n%s", diff)
	}
}

func otlpRequest() *collectortrace.ExportTraceServiceRequest {
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "api"}}}}},
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{
			{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), ParentSpanId: bytes.Repeat([]byte{3}, 8),
				Name: "GET /items", Kind: tracev1.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: uint64(t0.UnixNano()), EndTimeUnixNano: uint64(t0.Add(time.Millisecond).UnixNano()),
				Status:     &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: "boom"},
				Attributes: []*commonv1.KeyValue{{Key: "http.response.status_code", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 503}}}},
				Events: []*tracev1.Span_Event{{TimeUnixNano: uint64(t0.Add(time.Microsecond).UnixNano()), Name: "upstream_attempt",
					Attributes: []*commonv1.KeyValue{{Key: "weft.attempt", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 2}}}}}}},
			{TraceId: []byte{1}, SpanId: bytes.Repeat([]byte{2}, 8)}, // invalid trace ID: skipped
		}}},
	}}}
}

func TestFromOTLP(t *testing.T) {
	got := FromOTLP(otlpRequest())
	want := []Span{{TraceID: strings.Repeat("01", 16), SpanID: strings.Repeat("02", 8), ParentSpanID: strings.Repeat("03", 8),
		Service: "api", Name: "GET /items", Kind: "SERVER", Start: t0, End: t0.Add(time.Millisecond), Error: true, StatusMessage: "boom",
		Attributes: map[string]string{"http.response.status_code": "503"},
		Events:     []Event{{Time: t0.Add(time.Microsecond), Name: "upstream_attempt", Attributes: map[string]string{"weft.attempt": "2"}}}}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestReceivers(t *testing.T) {
	tests := []struct {
		name, contentType string
		body              func() []byte
		wantCode          int
	}{
		{"protobuf", "application/x-protobuf", func() []byte { b, _ := proto.Marshal(otlpRequest()); return b }, 200},
		{"json", "application/json", func() []byte { b, _ := protojson.Marshal(otlpRequest()); return b }, 200},
		{"garbage", "application/x-protobuf", func() []byte { return []byte("\xff\xff") }, 400},
		{"wrong type", "text/plain", func() []byte { return nil }, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewStore(Limits{})
			srv := httptest.NewServer(&Receiver{Store: store})
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/v1/traces", tt.contentType, bytes.NewReader(tt.body()))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if wantHeld := map[bool]int{true: 1, false: 0}[tt.wantCode == 200]; store.Len() != wantHeld {
				t.Fatalf("held %d traces, want %d", store.Len(), wantHeld)
			}
		})
	}
	store := NewStore(Limits{})
	if _, err := (&Receiver{Store: store}).Export(context.Background(), otlpRequest()); err != nil || store.Len() != 1 {
		t.Fatalf("gRPC export: %v, held %d", err, store.Len())
	}
}

func TestViewerPages(t *testing.T) {
	store := NewStore(Limits{})
	store.Add(chain(strings.Repeat("ab", 16), t0))
	srv := httptest.NewServer(Viewer(store))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/traces?service=db&errors=1"); code != 200 || !strings.Contains(body, "web: GET /") || !strings.Contains(body, "error") {
		t.Fatalf("list page: %d\n%s", code, body)
	}
	if code, body := get("/traces?service=nope"); code != 200 || strings.Contains(body, "trace-row") {
		t.Fatalf("filtered list should be empty: %d", code)
	}
	if code, _ := get("/traces?min_duration=soon"); code != 400 {
		t.Fatalf("bad min_duration: %d, want 400", code)
	}
	code, body := get("/traces/" + strings.Repeat("ab", 16))
	if code != 200 || strings.Count(body, `<tr class="span-row`) != 4 || strings.Count(body, `<tr class="span-row critical"`) != 4 || !strings.Contains(body, "db") {
		t.Fatalf("trace page: %d\n%s", code, body)
	}
	if code, _ := get("/traces/ffff"); code != 404 {
		t.Fatalf("unknown trace: %d, want 404", code)
	}
	_, body = get("/api/traces/" + strings.Repeat("ab", 16))
	var got struct{ Rows []Row }
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Rows) != 4 {
		t.Fatalf("trace JSON: %v, %d rows", err, len(got.Rows))
	}
}

// TestStoreBoundedInBytes: beyond MaxBytes the oldest traces go, and the
// figures say so; the newest stays even alone over the bound.
func TestStoreBoundedInBytes(t *testing.T) {
	one := chain(strings.Repeat("01", 16), t0)
	var perTrace int64
	for i := range one {
		perTrace += size(&one[i])
	}
	s := NewStore(Limits{MaxBytes: 3 * perTrace})
	for i := range 5 {
		s.Add(chain(fmt.Sprintf("%032x", i), t0.Add(time.Duration(i)*time.Second)))
	}
	st := s.Stats()
	if st.Traces != 3 || st.Spans != 12 || st.Bytes != 3*perTrace || st.TracesEvicted != 2 {
		t.Errorf("stats %+v; want the 3 newest traces, 12 spans, %d bytes, 2 evicted", st, 3*perTrace)
	}
	if _, ok := s.Trace(fmt.Sprintf("%032x", 0)); ok {
		t.Error("the oldest trace is still held")
	}
	if _, ok := s.Trace(fmt.Sprintf("%032x", 4)); !ok {
		t.Error("the newest trace was evicted")
	}
	big := chain(strings.Repeat("ff", 16), t0.Add(time.Minute))
	big[0].Attributes = map[string]string{"blob": strings.Repeat("x", int(4*perTrace))}
	s.Add(big)
	if st := s.Stats(); st.Traces != 1 || st.Bytes <= 3*perTrace {
		t.Errorf("stats %+v; want only the newest, oversized trace", st)
	}
}
