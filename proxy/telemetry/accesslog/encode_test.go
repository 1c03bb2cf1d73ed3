package accesslog

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

// jsonLine is the reference encoding: encoding/json without HTML escaping.
func jsonLine(t testing.TB, e *Entry) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	db, _ := url.Parse("spiffe://weft.local/ns/default/dc/dc1/svc/db")
	at := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		e    Entry
	}{
		{"zero", Entry{}},
		{"full", Entry{
			Time: at, TraceID: TraceID{0x4b, 0xf9, 15: 0x36}, SpanID: SpanID{1, 2, 3, 4, 5, 6, 7, 8},
			Direction: "inbound", Source: "web", SourceID: "spiffe://weft.local/ns/default/dc/dc1/svc/web", Destination: "api",
			DestinationID: Identity{ID: "spiffe://weft.local/ns/default/dc/dc1/svc/api"}, Route: "api", UpstreamHost: "127.0.0.1:9001",
			Method: "GET", Path: "/items", Protocol: "http", Status: 503, GRPCStatus: "14", DurationMS: 1.5, BytesIn: 12, BytesOut: 61,
			WeftError: "no_healthy_upstream",
		}},
		{"certificate identity", Entry{DestinationID: Identity{Cert: &x509.Certificate{URIs: []*url.URL{db}}}}},
		{"escapes", Entry{Path: "/q\"uote\\<tag>&amp;\x00\x01\x1f\b\f\n\r\t\x7f", Method: "caf\u00e9 \u2028\u2029 \U0001F600"}},
		{"invalid UTF-8", Entry{Path: "/\xff\xfe a \xe2\x80 b \xc0"}},
		{"local time", Entry{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -5*3600))}},
		{"tiny and huge durations", Entry{DurationMS: 1e-7, BytesIn: -1}},
		{"huge duration", Entry{DurationMS: 3e21}},
		{"round duration", Entry{DurationMS: 12}},
		{"microsecond duration", Entry{DurationMS: 0.001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := string(tt.e.AppendJSON(nil)), jsonLine(t, &tt.e); got != want {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("/items", "GET", 200, 1.25, int64(3))
	f.Add("/\xff\"\\\u2028", "\x00", -1, 1e-9, int64(-7))
	f.Fuzz(func(t *testing.T, path, method string, status int, dur float64, n int64) {
		e := Entry{Path: path, Method: method, Route: path + method, Status: status, DurationMS: dur, BytesOut: n}
		if dur != dur || dur > 1e308 || dur < -1e308 {
			return // encoding/json refuses NaN and infinities
		}
		if got, want := string(e.AppendJSON(nil)), jsonLine(t, &e); got != want {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func TestAppendJSONDoesNotAllocate(t *testing.T) {
	e := &Entry{Time: time.Now(), TraceID: TraceID{1}, Direction: "outbound", Source: "web", Destination: "api",
		DestinationID: Identity{ID: "spiffe://weft.local/ns/default/dc/dc1/svc/api"}, Method: "GET", Path: "/a\"b", Status: 200, DurationMS: 0.731}
	buf := make([]byte, 0, 1024)
	if allocs := testing.AllocsPerRun(100, func() { buf = e.AppendJSON(buf[:0]) }); allocs != 0 {
		t.Errorf("AppendJSON allocates %v times per line; want 0", allocs)
	}
}

// TestLinesAppearWhenIdle: a line is written without Close, within the
// flush delay, once nothing else is queued.
func TestLinesAppearWhenIdle(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{Logger: quiet})
	defer l.Close()
	l.Log(&Entry{Status: 200})
	poll.UntilTrue(t, 10*time.Second, "the line written while the logger stays open", func() bool {
		return len(out.String()) > 0
	})
	if got := len(out.lines(t)); got != 1 {
		t.Errorf("%d lines, want 1", got)
	}
}

// BenchmarkEncode compares the writer goroutine's encoding with
// encoding/json's, per line.
func BenchmarkEncode(b *testing.B) {
	e := &Entry{Time: time.Now(), TraceID: TraceID{1}, SpanID: SpanID{2}, Direction: "outbound", Source: "web", Destination: "api",
		DestinationID: Identity{ID: "spiffe://weft.local/ns/default/dc/dc1/svc/api"}, Route: "api", UpstreamHost: "127.0.0.1:9001",
		Method: "GET", Path: "/items", Protocol: "http", Status: 200, DurationMS: 0.731, BytesOut: 61}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = e.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for b.Loop() {
			buf.Reset()
			enc.Encode(e)
		}
	})
}
