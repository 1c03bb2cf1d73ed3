package results

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// proxied is a result of a peer with two proxy processes.
func proxied(peer string, throughput, p99, cpu, rssIdle float64) PeerResult {
	return PeerResult{Peer: peer, Throughput: throughput, LatencyMs: Latency{P50: p99 / 4, P90: p99 / 2, P99: p99, P999: 2 * p99},
		CPUPer1k: cpu, RSSIdleMB: rssIdle, RSSLoadMB: 2 * rssIdle, Units: 1000,
		Procs: []Proc{{Name: peer + "-client", RSSIdleMB: rssIdle}, {Name: peer + "-server", RSSIdleMB: rssIdle - 1}}}
}

// run is a results file where Weft meets every target but the ones a test
// breaks.
func run() *Results {
	direct := PeerResult{Peer: PeerDirect, Throughput: 20000, LatencyMs: Latency{P50: 0.25, P90: 0.5, P99: 1, P999: 2}, Units: 1000}
	return &Results{
		Peers: []Peer{{ID: PeerDirect, Name: "direct"}, {ID: PeerHAProxy, Name: "HAProxy pair"}, {ID: PeerConsul, Name: "Consul's proxy pair"}, {ID: PeerWeft, Name: "Weft pair"}},
		Workloads: []Workload{
			{ID: HTTPKeepAlive, Unit: "request", Baseline: PeerHAProxy, Results: []PeerResult{
				direct, proxied(PeerHAProxy, 10000, 2, 0.1, 20), proxied(PeerConsul, 12000, 1.5, 0.1, 80), proxied(PeerWeft, 9000, 2.4, 0.14, 12)}},
			{ID: GRPCUnary, Unit: "request", Baseline: PeerHAProxy, Results: []PeerResult{
				direct, proxied(PeerHAProxy, 8000, 2, 0.1, 20), proxied(PeerWeft, 7000, 3, 0.12, 13)}},
			{ID: TCPStream, Unit: "64 KiB chunk", Baseline: PeerConsul, Results: []PeerResult{
				direct, proxied(PeerConsul, 3000, 2, 0.5, 80), proxied(PeerWeft, 3300, 2, 0.4, 11)}},
		},
		Readiness: []Readiness{{Peer: PeerHAProxy, ServedMs: 10, Samples: 3}, {Peer: PeerWeft, ReadyMs: 40, ServedMs: 45, Samples: 3}},
	}
}

func TestComputeRatios(t *testing.T) {
	r := run()
	ComputeRatios(r)
	ka := r.Workloads[0]
	weft, _ := ka.Result(PeerWeft)
	want := map[string]float64{FigThroughput: 0.9, FigP50: 1.2, FigP90: 1.2, FigP99: 1.2, FigP999: 1.2, FigCPU: 1.4, FigRSSIdle: 0.6, FigRSSLoad: 0.6}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
	if d := cmp.Diff(want, weft.VsBaseline, approx); d != "" {
		t.Errorf("Weft vs HAProxy (-want +got):\n%s", d)
	}
	// Direct has no proxy: only throughput and latency have a ratio to it.
	wantDirect := map[string]float64{FigThroughput: 0.45, FigP50: 2.4, FigP90: 2.4, FigP99: 2.4, FigP999: 2.4}
	if d := cmp.Diff(wantDirect, weft.VsDirect, approx); d != "" {
		t.Errorf("Weft vs direct (-want +got):\n%s", d)
	}
	ha, _ := ka.Result(PeerHAProxy)
	if ha.VsBaseline != nil {
		t.Errorf("the baseline has ratios to itself: %v", ha.VsBaseline)
	}
	direct, _ := ka.Result(PeerDirect)
	if direct.VsDirect != nil || len(direct.VsBaseline) != 5 {
		t.Errorf("direct's ratios: vs direct %v, vs HAProxy %v; want none, and the five it has figures for", direct.VsDirect, direct.VsBaseline)
	}
	// The TCP workload's baseline is Consul's proxy.
	tcpWeft, _ := r.Workloads[2].Result(PeerWeft)
	if got := tcpWeft.VsBaseline[FigThroughput]; math.Abs(got-1.1) > 1e-9 {
		t.Errorf("TCP throughput vs Consul = %v, want 1.1", got)
	}
	if got := r.Readiness[1].VsHAProxy; got != 4.5 {
		t.Errorf("readiness vs HAProxy = %v, want 4.5", got)
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(r *Results)
		missed []string
	}{
		{"every target met", func(*Results) {}, nil},
		{"keep-alive throughput and CPU", func(r *Results) {
			r.Workloads[0].Results[3].Throughput = 7000 // 0.7×
			r.Workloads[0].Results[3].CPUPer1k = 0.16   // 1.6×
		}, []string{"HTTP/1.1 keep-alive saturation throughput vs HAProxy pair", "CPU per request, HTTP/1.1 keep-alive vs HAProxy pair"}},
		{"added p99", func(r *Results) {
			r.Workloads[0].Results[3].LatencyMs.P99 = 2.6 // adds 1.6 ms against 1.5 × 1 ms
		}, []string{"added p99 at the fixed rate, HTTP/1.1 keep-alive, within 1.5× HAProxy's"}},
		{"HAProxy adds nothing to p99: the run cannot judge it", func(r *Results) {
			r.Workloads[0].Results[1].LatencyMs.P99 = 0.9
			r.Workloads[0].Results[3].LatencyMs.P99 = 0.8
		}, []string{"added p99 at the fixed rate, HTTP/1.1 keep-alive, within 1.5× HAProxy's"}},
		{"gRPC and TCP throughput", func(r *Results) {
			r.Workloads[1].Results[2].Throughput = 6000
			r.Workloads[2].Results[2].Throughput = 2900
		}, []string{"gRPC unary saturation throughput vs HAProxy pair", "TCP streaming saturation throughput vs Consul's proxy pair"}},
		{"idle RSS of one sidecar, readiness", func(r *Results) {
			r.Workloads[2].Results[2].Procs[1].RSSIdleMB = 15.5
			r.Readiness[1].ServedMs = 101
		}, []string{"idle RSS of every Weft sidecar", "Weft sidecar readiness, process start to first request served"}},
		{"a failed request in another peer", func(r *Results) {
			r.Workloads[2].Results[1].Failed = 1
		}, []string{"failed requests, every scenario"}},
		{"no gRPC workload: not measured is missed", func(r *Results) {
			r.Workloads = append(r.Workloads[:1], r.Workloads[2])
		}, []string{"gRPC unary saturation throughput vs HAProxy pair"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run()
			tt.edit(r)
			ComputeRatios(r)
			targets := Judge(r)
			if len(targets) != 8 {
				t.Fatalf("%d targets, want 8", len(targets))
			}
			var missed []string
			for _, tg := range targets {
				if !tg.Pass {
					missed = append(missed, tg.Name)
				}
			}
			if d := cmp.Diff(tt.missed, missed); d != "" {
				t.Errorf("missed targets (-want +got):\n%s\n%v", d, targets)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	tg := Target{Name: "idle RSS", Value: 12.04, Op: "≤", Limit: 15, Unit: "MB", Pass: true, Detail: "largest: a"}
	if got, want := tg.String(), "[PASS] idle RSS: 12.0 MB ≤ 15.0 MB (largest: a)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestWriteAndNewest(t *testing.T) {
	dir := t.TempDir()
	older := &Results{Date: time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), Commit: "bbbbbbb"}
	newer := &Results{Date: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), Commit: "aaaaaaa"}
	for _, r := range []*Results{newer, older} {
		if _, err := r.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	path, got, err := Newest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "2026-12-07-aaaaaaa.json" || got.Commit != "aaaaaaa" {
		t.Errorf("Newest = %s (%s), want 2026-12-07-aaaaaaa.json", path, got.Commit)
	}
	if _, _, err := Newest(t.TempDir()); err == nil {
		t.Error("Newest of an empty directory: no error")
	}
}
