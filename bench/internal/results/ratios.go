package results

// Figure names, the keys of PeerResult's ratio maps.
const (
	FigThroughput = "throughput"
	FigP50        = "p50"
	FigP90        = "p90"
	FigP99        = "p99"
	FigP999       = "p99_9"
	FigCPU        = "cpu_per_1k"
	FigSwitches   = "switches_per_1k"
	FigRSSIdle    = "rss_idle_mb"
	FigRSSLoad    = "rss_load_mb"
)

// Figures are the figure names in report order.
var Figures = []string{FigThroughput, FigP50, FigP90, FigP99, FigP999, FigCPU, FigSwitches, FigRSSIdle, FigRSSLoad}

// Figure returns r's value of the named figure, and false when r has no
// such figure: a peer without proxy processes (direct) has no CPU or
// memory figures.
func (r PeerResult) Figure(name string) (float64, bool) {
	switch name {
	case FigThroughput:
		return r.Throughput, true
	case FigP50:
		return r.LatencyMs.P50, true
	case FigP90:
		return r.LatencyMs.P90, true
	case FigP99:
		return r.LatencyMs.P99, true
	case FigP999:
		return r.LatencyMs.P999, true
	}
	if len(r.Procs) == 0 {
		return 0, false
	}
	switch name {
	case FigCPU:
		return r.CPUPer1k, true
	case FigSwitches:
		return r.SwitchesPer1k, r.SwitchesPer1k > 0 // absent from older results files
	case FigRSSIdle:
		return r.RSSIdleMB, true
	case FigRSSLoad:
		return r.RSSLoadMB, true
	}
	return 0, false
}

// ComputeRatios fills every result's VsBaseline and VsDirect, and every
// readiness's VsHAProxy.
func ComputeRatios(r *Results) {
	for wi := range r.Workloads {
		w := &r.Workloads[wi]
		base, hasBase := w.Result(w.Baseline)
		direct, hasDirect := w.Result(PeerDirect)
		for i := range w.Results {
			res := &w.Results[i]
			res.VsBaseline, res.VsDirect = nil, nil
			if hasBase && res.Peer != w.Baseline {
				res.VsBaseline = ratios(*res, base)
			}
			if hasDirect && res.Peer != PeerDirect {
				res.VsDirect = ratios(*res, direct)
			}
		}
	}
	var haproxy float64
	for _, rd := range r.Readiness {
		if rd.Peer == PeerHAProxy {
			haproxy = rd.ServedMs
		}
	}
	for i := range r.Readiness {
		rd := &r.Readiness[i]
		rd.VsHAProxy = 0
		if haproxy > 0 && rd.Peer != PeerHAProxy {
			rd.VsHAProxy = rd.ServedMs / haproxy
		}
	}
}

// ratios are a's figures divided by ref's, for the figures both have and
// ref's is not zero; nil when there are none.
func ratios(a, ref PeerResult) map[string]float64 {
	var m map[string]float64
	for _, f := range Figures {
		va, okA := a.Figure(f)
		vr, okR := ref.Figure(f)
		if !okA || !okR || vr == 0 {
			continue
		}
		if m == nil {
			m = map[string]float64{}
		}
		m[f] = va / vr
	}
	return m
}
