package accesslog

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/syncbuf"
)

// syncBuffer is the writer goroutine's output, which the test reads.
type syncBuffer struct{ syncbuf.Buffer }

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestOneJSONLinePerEntry(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{Logger: quiet})
	at := time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)
	l.Log(&Entry{
		Time: at, TraceID: mustTraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736"), SpanID: SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Direction: "inbound", Source: "web", SourceID: "spiffe://weft.local/ns/default/dc/dc1/svc/web", Destination: "api",
		DestinationID: Identity{ID: "spiffe://weft.local/ns/default/dc/dc1/svc/api"},
		Route:         "api", UpstreamHost: "127.0.0.1:9001", Method: "GET", Path: "/items", Protocol: "http",
		Status: 503, DurationMS: 1.5, BytesIn: 0, BytesOut: 61, WeftError: "no_healthy_upstream",
	})
	db, _ := url.Parse("spiffe://weft.local/ns/default/dc/dc1/svc/db")
	l.Log(&Entry{Time: at, Direction: "outbound", Method: "POST", Path: `/q"uote<`, Status: 200, DestinationID: Identity{Cert: &x509.Certificate{URIs: []*url.URL{db}}}})
	l.Close()

	lines := out.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	want := map[string]any{
		"time": "2026-11-24T12:00:00.123Z", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
		"direction": "inbound", "source": "web", "source_id": "spiffe://weft.local/ns/default/dc/dc1/svc/web", "destination": "api",
		"destination_id": "spiffe://weft.local/ns/default/dc/dc1/svc/api", "route": "api", "upstream_host": "127.0.0.1:9001", "method": "GET", "path": "/items", "protocol": "http",
		"status": 503.0, "grpc_status": "", "duration_ms": 1.5, "bytes_in": 0.0, "bytes_out": 61.0, "weft_error": "no_healthy_upstream",
	}
	if diff := cmp.Diff(want, lines[0]); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
	if len(lines[1]) != len(want) || lines[1]["path"] != `/q"uote<` || lines[1]["trace_id"] != "" {
		t.Errorf("second line %v: want every field, no trace ID, and the path as sent", lines[1])
	}
	if got := lines[1]["destination_id"]; got != db.String() {
		t.Errorf("destination_id from the upstream's certificate = %v, want %s", got, db)
	}
}

// gateWriter blocks every Write until opened: a stdout nobody reads.
type gateWriter struct {
	syncBuffer
	open chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.syncBuffer.Write(p)
}

func TestABlockedOutputNeverBlocksRequests(t *testing.T) {
	out := &gateWriter{open: make(chan struct{})}
	l := New(out, Options{Queue: 8, Logger: quiet})
	const n = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			l.Log(&Entry{Method: "GET", Path: "/", Status: 200, BytesOut: int64(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Log blocked on a blocked output")
	}
	if l.Dropped() == 0 {
		t.Error("nothing dropped with a blocked output and a queue of 8")
	}
	close(out.open)
	l.Close()
	if written := uint64(len(out.lines(t))); written+l.Dropped() != n {
		t.Errorf("written %d + dropped %d != %d logged", written, l.Dropped(), n)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorsCountAsDropped(t *testing.T) {
	l := New(failingWriter{}, Options{Logger: quiet})
	for range 5 {
		l.Log(&Entry{Status: 200})
	}
	l.Close()
	if got := l.Dropped(); got != 5 {
		t.Errorf("Dropped = %d, want 5", got)
	}
}

func TestCloseIsIdempotentAndLaterLinesAreDropped(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{Logger: quiet})
	l.Log(&Entry{Status: 200})
	l.Close()
	l.Close()
	l.Log(&Entry{Status: 201})
	if got := len(out.lines(t)); got != 1 {
		t.Errorf("%d lines, want the one logged before Close", got)
	}
	if got := l.Dropped(); got != 1 {
		t.Errorf("Dropped = %d, want 1 (logged after Close)", got)
	}

	var none *Logger
	none.Log(&Entry{})
	none.Close()
	if none.Dropped() != 0 {
		t.Error("a nil Logger counted a drop")
	}
}

// TestLogDoesNotWakeTheWriterPerEntry: entries logged back to back wake
// the writer once after idle and once per half queue, not once each.
func TestLogDoesNotWakeTheWriterPerEntry(t *testing.T) {
	var out syncBuffer
	const queue, n = 256, 2000
	l := New(&out, Options{Queue: queue, Logger: quiet})
	for i := range n {
		l.Log(&Entry{Status: 200, BytesOut: int64(i)})
	}
	l.Close()
	written := uint64(len(out.lines(t)))
	if written+l.Dropped() != n {
		t.Fatalf("written %d + dropped %d != %d logged", written, l.Dropped(), n)
	}
	if max := 1 + 2*n/queue; l.wakes.Load() > uint64(max) {
		t.Errorf("the writer woke %d times for %d entries, want at most %d", l.wakes.Load(), n, max)
	}
}

// TestAnIdleLoggerWritesALonelyLinePromptly: the first line after an idle
// spell reaches the output without waiting for more, or for Close.
func TestAnIdleLoggerWritesALonelyLinePromptly(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{Logger: quiet})
	t.Cleanup(l.Close)
	for i := range 3 {
		l.Log(&Entry{Status: 200 + i})
		poll.UntilTrue(t, 10*time.Second, "the line written", func() bool { return len(out.lines(t)) == i+1 })
	}
}

func BenchmarkLog(b *testing.B) {
	l := New(io.Discard, Options{Queue: 4096, Logger: quiet})
	defer l.Close()
	e := &Entry{
		Time: time.Now(), TraceID: TraceID{1, 2, 3}, SpanID: SpanID{4, 5, 6},
		Direction: "inbound", Source: "web", Destination: "api", Route: "api", UpstreamHost: "127.0.0.1:9001",
		Method: "GET", Path: "/items", Protocol: "http", Status: 200, DurationMS: 1.5, BytesOut: 61,
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Log(e)
		}
	})
}

func mustTraceID(t *testing.T, s string) TraceID {
	t.Helper()
	var id TraceID
	if err := id.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIDsRoundTrip(t *testing.T) {
	in := Entry{TraceID: TraceID{0xab, 15: 1}, SpanID: SpanID{7: 9}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Entry
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.TraceID != in.TraceID || out.SpanID != in.SpanID {
		t.Errorf("round trip of %s: %v %v", b, out.TraceID, out.SpanID)
	}
	if err := new(SpanID).UnmarshalText([]byte("abc")); err == nil {
		t.Error("a 3-digit span ID was accepted")
	}
}

func TestCloseDoesNotWaitForeverOnABlockedOutput(t *testing.T) {
	out := &gateWriter{open: make(chan struct{})}
	defer close(out.open)
	l := New(out, Options{CloseTimeout: 10 * time.Millisecond, Logger: quiet})
	l.Log(&Entry{Status: 200})
	closed := make(chan struct{})
	go func() {
		l.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung on a blocked output")
	}
}
