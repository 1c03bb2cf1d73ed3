package h2wire

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/net/http2/hpack"
)

func TestFieldNeverIndexes(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		never       bool
	}{
		{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"x-b3-traceid", "4bf92f3577b34da6", true},
		{"x-request-id", "7f1c", true},
		{"grpc-timeout", "999m", true},
		{"authorization", "Bearer x", true},
		{"cookie", "session=short", true},
		{"cookie", "session=a-cookie-long-enough-to-index", false},
		{":authority", "api.internal", false},
		{"user-agent", "grpc-go/1.85.0", false},
		{"content-type", "application/grpc", false},
	} {
		if got := Field(tc.name, tc.value).Sensitive; got != tc.never {
			t.Errorf("Field(%q, %q).Sensitive = %v, want %v", tc.name, tc.value, got, tc.never)
		}
	}
}

// TestFieldKeepsRepeatedFieldsIndexed: requests that differ only in their
// trace context encode alike, the repeated fields as one-byte indexes:
// the trace context no longer fills the dynamic table and evicts them.
func TestFieldKeepsRepeatedFieldsIndexed(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	dec := hpack.NewDecoder(4096, nil)
	constant := [][2]string{
		{":method", "POST"}, {":scheme", "https"}, {":path", "/grpc.testing.TestService/UnaryCall"},
		{":authority", "api.default.dc1.internal.example.consul"}, {"content-type", "application/grpc"},
		{"te", "trailers"}, {"user-agent", "grpc-go/1.85.0"},
	}
	sizes := map[int]int{}
	for i := range 200 {
		buf.Reset()
		for _, f := range constant {
			enc.WriteField(Field(f[0], f[1]))
		}
		repeated := buf.Len()
		tp := fmt.Sprintf("00-%032x-%016x-01", i, i)
		enc.WriteField(Field("traceparent", tp))
		fields, err := dec.DecodeFull(buf.Bytes())
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if last := fields[len(fields)-1]; last.Value != tp || !last.Sensitive {
			t.Fatalf("request %d: traceparent decoded as %+v, want %q never indexed", i, last, tp)
		}
		if i > 0 {
			sizes[repeated]++
		}
	}
	if want := len(constant); len(sizes) != 1 || sizes[want] != 199 {
		t.Errorf("bytes of the repeated fields, after the first request: %v (size: requests); want %d bytes every time, one index per field", sizes, want)
	}
}

// BenchmarkEncodeRequestHeaders encodes a gRPC request's header block
// whose traceparent differs every time, with every field indexed (x/net's
// default) and with Field's rule.
func BenchmarkEncodeRequestHeaders(b *testing.B) {
	constant := [][2]string{
		{":method", "POST"}, {":scheme", "https"}, {":path", "/grpc.testing.TestService/UnaryCall"},
		{":authority", "api.default.dc1.internal.example.consul"}, {"content-type", "application/grpc"},
		{"te", "trailers"}, {"user-agent", "grpc-go/1.85.0"},
	}
	for _, tc := range []struct {
		name  string
		field func(name, value string) hpack.HeaderField
	}{
		{"index-all", func(name, value string) hpack.HeaderField { return hpack.HeaderField{Name: name, Value: value} }},
		{"never-index-trace", Field},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var buf bytes.Buffer
			enc := hpack.NewEncoder(&buf)
			tp := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			total := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				buf.Reset()
				for _, f := range constant {
					enc.WriteField(tc.field(f[0], f[1]))
				}
				for j, n := 0, i; j < 16; j, n = j+1, n>>4 { // a new trace ID each time
					tp[34-j] = "0123456789abcdef"[n&15]
				}
				enc.WriteField(tc.field("traceparent", string(tp)))
				total += buf.Len()
			}
			b.ReportMetric(float64(total)/float64(b.N), "bytes/block")
		})
	}
}
