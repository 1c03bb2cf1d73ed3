package results

import (
	"fmt"
	"slices"
	"strings"
)

// Weft's performance targets (issue #12; README, Performance). Every
// ratio is between figures of the same run.
const (
	MinKeepAliveThroughputVsHAProxy = 0.8
	MaxCPUVsHAProxy                 = 1.5
	MaxAddedP99VsHAProxy            = 1.5
	MinGRPCThroughputVsHAProxy      = 0.8
	MinTCPThroughputVsConsul        = 1.0
	MaxIdleRSSMB                    = 15
	MaxReadinessMs                  = 100
)

// Target is one of Weft's targets judged on one run.
type Target struct {
	Name string `json:"name"`
	// Pass is Value Op Limit; both are in Unit.
	Value float64 `json:"value"`
	Op    string  `json:"op"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	Pass  bool    `json:"pass"`
	// Detail holds the figures behind Value, or why it was not measured
	// (a target not measured is missed).
	Detail string `json:"detail,omitempty"`
}

// Verdict is "PASS" or "MISS".
func (t Target) Verdict() string {
	if t.Pass {
		return "PASS"
	}
	return "MISS"
}

// String is the target's line in the harness's output.
func (t Target) String() string {
	s := fmt.Sprintf("[%s] %s: %s %s %s", t.Verdict(), t.Name, FormatValue(t.Value, t.Unit), t.Op, FormatValue(t.Limit, t.Unit))
	if t.Detail != "" {
		s += " (" + t.Detail + ")"
	}
	return s
}

// FormatValue prints v in unit as the reports do.
func FormatValue(v float64, unit string) string {
	switch unit {
	case "×":
		return fmt.Sprintf("%.2f×", v)
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// Judge returns Weft's targets judged on r, in the order of the issue.
func Judge(r *Results) []Target {
	return []Target{
		ratioTarget(r, "HTTP/1.1 keep-alive saturation throughput", HTTPKeepAlive, PeerHAProxy, FigThroughput, "≥", MinKeepAliveThroughputVsHAProxy),
		ratioTarget(r, "CPU per request, HTTP/1.1 keep-alive", HTTPKeepAlive, PeerHAProxy, FigCPU, "≤", MaxCPUVsHAProxy),
		addedP99Target(r),
		ratioTarget(r, "gRPC unary saturation throughput", GRPCUnary, PeerHAProxy, FigThroughput, "≥", MinGRPCThroughputVsHAProxy),
		ratioTarget(r, "TCP streaming saturation throughput", TCPStream, PeerConsul, FigThroughput, "≥", MinTCPThroughputVsConsul),
		idleRSSTarget(r),
		readinessTarget(r),
		failuresTarget(r),
	}
}

// pass reports whether v op limit holds.
func pass(v float64, op string, limit float64) bool {
	if op == "≥" {
		return v >= limit
	}
	return v <= limit
}

func workload(r *Results, id string) (Workload, bool) {
	for _, w := range r.Workloads {
		if w.ID == id {
			return w, true
		}
	}
	return Workload{}, false
}

// ratioTarget judges Weft's figure under a workload as a ratio to a
// reference peer's.
func ratioTarget(r *Results, what, wid, ref, fig, op string, limit float64) Target {
	t := Target{Name: fmt.Sprintf("%s vs %s", what, r.PeerName(ref)), Op: op, Limit: limit, Unit: "×"}
	w, _ := workload(r, wid)
	weft, okW := w.Result(PeerWeft)
	base, okB := w.Result(ref)
	vw, _ := weft.Figure(fig)
	vb, _ := base.Figure(fig)
	if !okW || !okB || vb == 0 {
		t.Detail = fmt.Sprintf("not measured: this run has no %s figures of Weft and %s", wid, r.PeerName(ref))
		return t
	}
	t.Value = vw / vb
	t.Pass = pass(t.Value, op, limit)
	t.Detail = fmt.Sprintf("Weft %s, %s %s", formatFigure(fig, vw, w.Unit), r.PeerName(ref), formatFigure(fig, vb, w.Unit))
	return t
}

// addedP99Target: the p99 Weft adds to direct's, at the fixed rate, within
// 1.5× what HAProxy adds, in milliseconds. When HAProxy seems to add
// nothing (direct's p99 at or above HAProxy's, which only noise on the
// machine does) the run cannot judge it, and the target is missed.
func addedP99Target(r *Results) Target {
	t := Target{Name: fmt.Sprintf("added p99 at the fixed rate, HTTP/1.1 keep-alive, within %g× HAProxy's", MaxAddedP99VsHAProxy), Op: "≤", Unit: "ms"}
	w, _ := workload(r, HTTPKeepAlive)
	weft, okW := w.Result(PeerWeft)
	ha, okH := w.Result(PeerHAProxy)
	direct, okD := w.Result(PeerDirect)
	if !okW || !okH || !okD {
		t.Detail = "not measured: this run lacks Weft, HAProxy or direct under " + HTTPKeepAlive
		return t
	}
	haAdded := ha.LatencyMs.P99 - direct.LatencyMs.P99
	t.Value = weft.LatencyMs.P99 - direct.LatencyMs.P99
	t.Limit = MaxAddedP99VsHAProxy * max(haAdded, 0)
	if haAdded <= 0 {
		t.Detail = fmt.Sprintf("not judged: direct's p99 %.2f ms is not below HAProxy's %.2f ms, too noisy a run", direct.LatencyMs.P99, ha.LatencyMs.P99)
		return t
	}
	t.Pass = t.Value <= t.Limit
	t.Detail = fmt.Sprintf("p99 minus direct's %.2f ms; HAProxy adds %.2f ms", direct.LatencyMs.P99, haAdded)
	return t
}

// idleRSSTarget: every Weft sidecar's idle RSS.
func idleRSSTarget(r *Results) Target {
	t := Target{Name: "idle RSS of every Weft sidecar", Op: "≤", Limit: MaxIdleRSSMB, Unit: "MB"}
	n := 0
	for _, w := range r.Workloads {
		res, ok := w.Result(PeerWeft)
		if !ok {
			continue
		}
		for _, p := range res.Procs {
			n++
			if p.RSSIdleMB > t.Value {
				t.Value = p.RSSIdleMB
				t.Detail = fmt.Sprintf("largest: %s, anon %.1f MB, PSS %.1f MB", p.Name, p.AnonIdleMB, p.PSSIdleMB)
			}
		}
	}
	if n == 0 {
		t.Detail = "not measured: this run has no Weft sidecar"
		return t
	}
	t.Pass = t.Value <= t.Limit
	return t
}

// readinessTarget: a Weft sidecar serves its first request within 100 ms
// of being started.
func readinessTarget(r *Results) Target {
	t := Target{Name: "Weft sidecar readiness, process start to first request served", Op: "≤", Limit: MaxReadinessMs, Unit: "ms"}
	for _, rd := range r.Readiness {
		if rd.Peer == PeerWeft {
			t.Value, t.Pass = rd.ServedMs, rd.ServedMs <= MaxReadinessMs
			t.Detail = fmt.Sprintf("admin /ready after %.1f ms; median of %d", rd.ReadyMs, rd.Samples)
			return t
		}
	}
	t.Detail = "not measured"
	return t
}

// failuresTarget: no failed request in any scenario, whichever peer.
func failuresTarget(r *Results) Target {
	t := Target{Name: "failed requests, every scenario", Op: "≤", Unit: "failed"}
	var where []string
	n := 0
	for _, w := range r.Workloads {
		for _, res := range w.Results {
			n++
			if res.Failed > 0 {
				t.Value += float64(res.Failed)
				where = append(where, fmt.Sprintf("%s %s: %d of %d", w.ID, res.Peer, res.Failed, res.Units))
			}
		}
	}
	slices.Sort(where)
	t.Detail = strings.Join(where, "; ")
	if n == 0 {
		t.Detail = "not measured"
		return t
	}
	t.Pass = t.Value == 0
	return t
}

// formatFigure prints one figure's value with its unit.
func formatFigure(fig string, v float64, unit string) string {
	switch fig {
	case FigThroughput:
		return fmt.Sprintf("%.0f %ss/s", v, unitShort(unit))
	case FigCPU:
		return fmt.Sprintf("%.3f CPU s per 1,000 %ss", v, unitShort(unit))
	case FigRSSIdle, FigRSSLoad:
		return fmt.Sprintf("%.1f MB", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

// unitShort is the unit's last word ("request", "chunk").
func unitShort(unit string) string {
	if i := strings.LastIndexByte(unit, ' '); i >= 0 {
		return unit[i+1:]
	}
	return unit
}
