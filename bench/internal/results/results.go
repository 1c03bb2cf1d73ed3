// Package results is the schema of a `make bench` results file,
// bench/results/<date>-<commit>.json: every figure of every workload and
// peer, the ratios each figure is reported with, and Weft's targets
// judged from them. bench/sidecar measures and writes it; bench/report
// renders the newest one into the README and an SVG chart.
package results

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Peer IDs: what carries the traffic between the load and the backend.
const (
	PeerDirect  = "direct"  // no proxy
	PeerHAProxy = "haproxy" // two HAProxy processes, TLS with client certificates between them
	PeerConsul  = "consul"  // Consul's built-in proxy pair (L4, mTLS)
	PeerWeft    = "weft"    // Weft's sidecar pair at its defaults
	// PeerWeftTrace100 is Weft's pair under a control plane tracing 100 %
	// of requests: the measurement behind the --trace-sampling default.
	PeerWeftTrace100 = "weft-trace100"
)

// Workload IDs.
const (
	HTTPKeepAlive = "http1-keepalive" // HTTP/1.1, connections reused, 1 KiB response
	HTTPNewConn   = "http1-newconn"   // HTTP/1.1, a new connection per request
	GRPCUnary     = "grpc-unary"      // gRPC unary calls (fortio's ping service)
	TCPStream     = "tcp-stream"      // TCP echo in 64 KiB chunks
)

// Results is one run of the benchmark.
type Results struct {
	Date   time.Time `json:"date"`
	Commit string    `json:"commit"`
	// Dirty is set when the work tree had uncommitted changes.
	Dirty     bool        `json:"dirty,omitempty"`
	Machine   Machine     `json:"machine"`
	Settings  Settings    `json:"settings"`
	Peers     []Peer      `json:"peers"`
	Workloads []Workload  `json:"workloads"`
	Readiness []Readiness `json:"readiness"`
	Targets   []Target    `json:"targets"`
}

// Machine is where the run happened; other work on the machine shows in
// its load average.
type Machine struct {
	CPU       string     `json:"cpu"`
	Cores     int        `json:"cores"`
	Kernel    string     `json:"kernel"`
	LoadStart [3]float64 `json:"load_start"`
	LoadEnd   [3]float64 `json:"load_end"`
}

// String is the machine line of the report.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, Linux %s, load average %s at the start and %s at the end",
		m.CPU, m.Cores, m.Kernel, loadString(m.LoadStart), loadString(m.LoadEnd))
}

func loadString(l [3]float64) string { return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2]) }

// Settings are the load every scenario got.
type Settings struct {
	// Quick marks a smoke run (short runs, one round): it checks the
	// harness, its figures are not measurements.
	Quick bool `json:"quick,omitempty"`
	// Rounds of every scenario; figures are medians over them.
	Rounds int `json:"rounds"`
	// RunSeconds is the length of each fixed-rate and each saturation run.
	RunSeconds float64 `json:"run_seconds"`
	// IdleSeconds is how long the proxies sat idle, once serving, before
	// their idle memory was read.
	IdleSeconds float64 `json:"idle_seconds"`
	// Rate is the fixed rate (units per second) latency is measured at.
	Rate int `json:"rate"`
	// Conns are the load's connections, fixed-rate and saturation alike.
	Conns int `json:"conns"`
	// StreamConns are the connections of the TCP streaming saturation run.
	StreamConns int `json:"stream_conns"`
	// Tools are the versions of everything but Weft.
	Tools map[string]string `json:"tools"`
}

// Peer describes one peer as it ran.
type Peer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// NonDefault lists every setting that differs from the peer's
	// defaults, other than addresses, ports and file paths.
	NonDefault []string `json:"non_default"`
}

// Workload is one kind of traffic and every peer's figures under it.
type Workload struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Unit is what is counted: "request", or "64 KiB chunk".
	Unit string `json:"unit"`
	// Baseline is the peer every figure is also given as a ratio to.
	Baseline string       `json:"baseline"`
	Results  []PeerResult `json:"results"`
}

// Result returns the figures of peer under w.
func (w Workload) Result(peer string) (PeerResult, bool) {
	for _, r := range w.Results {
		if r.Peer == peer {
			return r, true
		}
	}
	return PeerResult{}, false
}

// PeerResult is one peer's figures under one workload: medians over the
// rounds, counts summed over them.
type PeerResult struct {
	Peer string `json:"peer"`
	// Throughput is the saturation throughput, units per second.
	Throughput float64 `json:"throughput"`
	// Rate is the rate the fixed-rate runs achieved.
	Rate float64 `json:"rate"`
	// LatencyMs is at the fixed rate.
	LatencyMs Latency `json:"latency_ms"`
	// CPUPer1k is the CPU seconds (user + system) of all the peer's proxy
	// processes per 1,000 units, over the fixed-rate runs.
	CPUPer1k float64 `json:"cpu_per_1k"`
	// SwitchesPer1k is the context switches of all the peer's proxy
	// processes (every thread, voluntary or not) per 1,000 units, over
	// the fixed-rate runs; 0 in results files written before it was
	// measured.
	SwitchesPer1k float64 `json:"switches_per_1k,omitempty"`
	// RSSIdleMB and RSSLoadMB are the resident memory of the peer's
	// largest proxy process, idle and during the fixed-rate runs.
	RSSIdleMB float64 `json:"rss_idle_mb"`
	RSSLoadMB float64 `json:"rss_load_mb"`
	// Units and Failed count every fixed-rate and saturation run.
	Units  int64 `json:"units"`
	Failed int64 `json:"failed"`
	// Procs are the peer's proxy processes, client side first.
	Procs []Proc `json:"procs,omitempty"`
	// ControlPlaneCPUPer1k is the control plane's CPU seconds per 1,000
	// units, for Weft's peers (span export lands there).
	ControlPlaneCPUPer1k float64 `json:"control_plane_cpu_per_1k,omitempty"`
	// VsBaseline and VsDirect are every figure as a ratio to the
	// workload's baseline and to direct (figure name → ratio), absent for
	// the reference itself and for figures the reference lacks.
	VsBaseline map[string]float64 `json:"vs_baseline,omitempty"`
	VsDirect   map[string]float64 `json:"vs_direct,omitempty"`
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
}

// Proc is one proxy process's own figures.
type Proc struct {
	Name     string  `json:"name"`
	CPUPer1k float64 `json:"cpu_per_1k"`
	// SwitchesPer1k: see PeerResult.SwitchesPer1k.
	SwitchesPer1k float64 `json:"switches_per_1k,omitempty"`
	RSSIdleMB     float64 `json:"rss_idle_mb"`
	AnonIdleMB    float64 `json:"anon_idle_mb"`
	PSSIdleMB     float64 `json:"pss_idle_mb"`
	RSSLoadMB     float64 `json:"rss_load_mb"`
}

// Readiness is how long a freshly started client-side proxy took, median
// over the rounds.
type Readiness struct {
	Peer string `json:"peer"`
	// ReadyMs is from process start to its readiness probe answering 200
	// (Weft's admin /ready); 0 where the proxy has none.
	ReadyMs float64 `json:"ready_ms,omitempty"`
	// ServedMs is from process start to the first request served through it.
	ServedMs float64 `json:"served_ms"`
	Samples  int     `json:"samples"`
	// VsHAProxy is ServedMs as a ratio to HAProxy's.
	VsHAProxy float64 `json:"vs_haproxy,omitempty"`
}

// FileName is where r is written in bench/results.
func (r *Results) FileName() string {
	return r.Date.UTC().Format("2006-01-02") + "-" + r.Commit + ".json"
}

// PeerNames are the peers' names in reports.
var PeerNames = map[string]string{
	PeerDirect:       "direct",
	PeerHAProxy:      "HAProxy pair",
	PeerConsul:       "Consul's proxy pair",
	PeerWeft:         "Weft pair",
	PeerWeftTrace100: "Weft pair, tracing 100 %",
}

// PeerName returns the name of peer id as the run recorded it, else as
// PeerNames has it, else id.
func (r *Results) PeerName(id string) string {
	for _, p := range r.Peers {
		if p.ID == id {
			return p.Name
		}
	}
	if n, ok := PeerNames[id]; ok {
		return n
	}
	return id
}

// Write writes r as indented JSON to dir/r.FileName() and returns the path.
func (r *Results) Write(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.FileName())
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// Load reads a results file.
func Load(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Newest returns the results file in dir with the latest Date, and its
// path.
func Newest(dir string) (string, *Results, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return "", nil, err
	}
	var best string
	var newest *Results
	for _, p := range paths {
		r, err := Load(p)
		if err != nil {
			return "", nil, err
		}
		if newest == nil || r.Date.After(newest.Date) {
			best, newest = p, r
		}
	}
	if newest == nil {
		return "", nil, fmt.Errorf("no results file in %s (make bench writes one)", dir)
	}
	return best, newest, nil
}

// Round rounds every figure of r to 4 significant digits, the precision
// the measurements have, so that results files stay readable and diff
// well.
func (r *Results) Round() {
	for wi := range r.Workloads {
		for i := range r.Workloads[wi].Results {
			res := &r.Workloads[wi].Results[i]
			for _, f := range []*float64{&res.Throughput, &res.Rate, &res.LatencyMs.P50, &res.LatencyMs.P90, &res.LatencyMs.P99,
				&res.LatencyMs.P999, &res.CPUPer1k, &res.RSSIdleMB, &res.RSSLoadMB, &res.ControlPlaneCPUPer1k} {
				*f = Sig4(*f)
			}
			for pi := range res.Procs {
				p := &res.Procs[pi]
				for _, f := range []*float64{&p.CPUPer1k, &p.RSSIdleMB, &p.AnonIdleMB, &p.PSSIdleMB, &p.RSSLoadMB} {
					*f = Sig4(*f)
				}
			}
			for _, m := range []map[string]float64{res.VsBaseline, res.VsDirect} {
				for k, v := range m {
					m[k] = Sig4(v)
				}
			}
		}
	}
	for i := range r.Readiness {
		rd := &r.Readiness[i]
		rd.ReadyMs, rd.ServedMs, rd.VsHAProxy = Sig4(rd.ReadyMs), Sig4(rd.ServedMs), Sig4(rd.VsHAProxy)
	}
	for i := range r.Targets {
		r.Targets[i].Value = Sig4(r.Targets[i].Value)
	}
}

// Sig4 rounds v to 4 significant digits, the precision of a benchmark's
// figures.
func Sig4(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}
