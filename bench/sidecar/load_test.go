package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/bench/internal/results"
)

func TestParseFortio(t *testing.T) {
	out := []byte(`{"ActualQPS": 998.5, "RetCodes": {"SERVING": 9980, "ERROR": 5},
		"DurationHistogram": {"Count": 9985, "Percentiles": [
			{"Percentile": 50, "Value": 0.0004}, {"Percentile": 90, "Value": 0.001},
			{"Percentile": 99, "Value": 0.0025}, {"Percentile": 99.9, "Value": 0.012}]}}`)
	got, err := parseFortio(out, "SERVING")
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{Rate: 998.5, Latency: results.Latency{P50: 0.4, P90: 1, P99: 2.5, P999: 12}, OK: 9980, All: 9985}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); d != "" {
		t.Errorf("parseFortio (-want +got):\n%s", d)
	}
}

func TestMedianLatency(t *testing.T) {
	rounds := []loadResult{
		{Latency: results.Latency{P50: 3, P90: 30, P99: 1, P999: 9}},
		{Latency: results.Latency{P50: 1, P90: 10, P99: 2, P999: 8}},
		{Latency: results.Latency{P50: 2, P90: 20, P99: 3, P999: 7}},
	}
	if got, want := medianLatency(rounds), (results.Latency{P50: 2, P90: 20, P99: 2, P999: 8}); got != want {
		t.Errorf("medianLatency = %+v, want %+v (each percentile's median on its own)", got, want)
	}
}

// serve accepts connections on loopback and hands each to handle.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().String()
}

// TestStream streams through an echo server without failures, and
// counts the connections of a server that hangs up early as failed.
func TestStream(t *testing.T) {
	echo := serve(t, func(c net.Conn) { io.Copy(c, c) })
	r, err := stream(echo, 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.All != r.OK || r.Rate <= 0 {
		t.Errorf("through an echo server: %+v; want chunks echoed and none failed", r)
	}

	hangUp := serve(t, func(c net.Conn) { io.CopyN(c, c, chunkSize) })
	r, err = stream(hangUp, 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.All-r.OK != 2 {
		t.Errorf("through a server that hangs up: %+v; want both connections failed", r)
	}
}
