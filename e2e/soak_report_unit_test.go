package e2e

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// TestSoakReport checks the soak's bookkeeping on made-up samples:
// denials are counted apart from failures, each sample lands in its
// interval, percentiles and RSS growth are computed as documented, and
// the chart is well-formed SVG.
func TestSoakReport(t *testing.T) {
	sched := soakSchedule{name: "test", load: 2 * time.Minute, interval: time.Minute, rate: 1}
	var samples []sample
	for i := range 100 { // minute 1: 100 HTTP/1.1 successes of 1..100 ms
		samples = append(samples, sample{proto: protoHTTP1, at: time.Duration(i) * 100 * time.Millisecond, took: time.Duration(i+1) * time.Millisecond})
	}
	samples = append(samples,
		sample{proto: protoTCP, at: 70 * time.Second, outcome: outcomeDenied},
		sample{proto: protoGRPC, at: 80 * time.Second, outcome: outcomeFailed, err: "port 12345 refused"},
		sample{proto: protoGRPC, at: 130 * time.Second, took: time.Millisecond}) // past the end: the last interval
	procs := []procSample{
		{proc: "web-1-sidecar-proxy", at: 10 * time.Second, rss: rss{total: 90, anon: 45}},
		{proc: "web-1-sidecar-proxy", at: 50 * time.Second, rss: rss{total: 100, anon: 55}},
		{proc: "web-1-sidecar-proxy", at: 110 * time.Second, rss: rss{total: 105, anon: 52.5}},
		{proc: "control-plane", at: 50 * time.Second, rss: rss{total: 100, anon: 50}},
		{proc: "control-plane", at: 110 * time.Second, rss: rss{total: 300, anon: 150}},
	}
	r := buildReport(sched, []faultRun{{Name: "a fault", StartS: 30, EndS: 40}}, samples, procs)

	if got, want := r.Total, (soakCounts{Sent: 103, OK: 101, Denied: 1, Failed: 1, SuccessRate: 101.0 / 102}); got != want {
		t.Errorf("total %+v, want %+v", got, want)
	}
	if n := len(r.Intervals); n != 2 || r.Intervals[0].Sent != 100 || r.Intervals[1].Sent != 3 {
		t.Fatalf("intervals %+v; want 100 then 3 requests", r.Intervals)
	}
	if l := r.Intervals[0].Latency[protoHTTP1]; l.N != 100 || l.P50 != 51 || l.P99 != 100 {
		t.Errorf("minute 1 latency %+v; want n 100, p50 51 ms, p99 100 ms", l)
	}
	if got := r.FailureKinds["grpc: port ##### refused"]; got != 1 {
		t.Errorf("failure kinds %v; want the digits masked", r.FailureKinds)
	}
	growth, restarted := r.rssGrowth(anonRSS)
	if g, ok := growth["web-1-sidecar-proxy"]; !ok || g < 0.049 || g > 0.051 || len(growth) != 1 || restarted["web-1-sidecar-proxy"] {
		t.Errorf("RSS growth %v (restarted %v); want web-1's 5 %% (minute 1's mean of 45 and 55 MB to 52.5), not restarted, no control plane", growth, restarted)
	}

	svg := soakChart(r)
	if err := xml.Unmarshal(svg, new(struct{})); err != nil || bytes.Contains(svg, []byte("NaN")) || !strings.Contains(string(svg), "a fault") {
		t.Errorf("chart: %v, NaN %v, fault named %v", err, bytes.Contains(svg, []byte("NaN")), strings.Contains(string(svg), "a fault"))
	}
}
