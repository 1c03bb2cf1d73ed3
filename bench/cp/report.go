package main

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// Targets of the benchmark on a 2-core machine (issue 17): p99 of a
// single-service change (per change), of a fan-out and of a mesh-wide
// change (per affected sidecar), and the control plane's peak RSS.
const (
	targetP99         = time.Second
	targetFanOutP99   = time.Second
	targetMeshWideP99 = 2 * time.Second
	targetRSS         = 500 << 20
)

type report struct {
	flags        flags
	clients      int
	registered   time.Duration
	syncTook     time.Duration
	syncCPU      float64
	idleCPU      float64 // CPU seconds per second with nothing changing
	syncMem      procs.Memory
	endMem       procs.Memory
	peakRSS      int64 // the control plane's VmHWM over the run
	streamErrors int64
	scenarios    []scenarioResult
}

// scenarioFigures are a scenario's convergence figures.
type scenarioFigures struct {
	changes, affected, missing, unaffected int
	// perClient: write → each affected sidecar's ACK of the change, over
	// every change; a sidecar that never ACKed counts as convergeTimeout.
	perClient []time.Duration
	// perChange: write → the last affected sidecar's ACK, one per change.
	perChange []time.Duration
}

func figures(sr scenarioResult) scenarioFigures {
	var f scenarioFigures
	f.changes = len(sr.changes)
	for _, r := range sr.changes {
		f.affected += len(r.change.affected)
		f.missing += len(r.missing)
		f.unaffected += r.unaffected
		f.perClient = append(f.perClient, r.perClient...)
		for range r.missing {
			f.perClient = append(f.perClient, convergeTimeout)
		}
		f.perChange = append(f.perChange, r.converged)
	}
	return f
}

// print writes the summary and the scenarios' table, and reports whether
// every target was met.
func (r report) print(w io.Writer) bool {
	fmt.Fprintf(w, "\nControl-plane scale (%d services × %d instances = %d %s ADS clients, %d upstreams each and the hot service; %d CPUs)\n",
		r.flags.topo.services, r.flags.topo.instances, r.clients, r.flags.mode, r.flags.topo.upstreams, runtime.NumCPU())
	fmt.Fprintf(w, "  Consul registration (catalog API) %v\n", r.registered.Round(time.Millisecond))
	fmt.Fprintf(w, "  initial sync of every client       %v, %.1f CPU s (idle rate after: %.3f CPU s/s)\n",
		r.syncTook.Round(time.Millisecond), r.syncCPU, r.idleCPU)
	fmt.Fprintf(w, "  control plane RSS                  %d MiB after sync, %d MiB at end, peak (VmHWM) %d MiB\n",
		r.syncMem.RSS>>20, r.endMem.RSS>>20, r.peakRSS>>20)
	fmt.Fprintf(w, "  load generator stream errors       %d\n\n", r.streamErrors)
	fmt.Fprintf(w, "| scenario | changes | affected sidecars per change | convergence p50 / p99 / max | slowest change | never ACKed | unaffected pushed | bytes received | CP CPU s | CP peak RSS | Consul blocking queries | Consul CPU s | Consul peak RSS |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sr := range r.scenarios {
		f := figures(sr)
		approx := ""
		if !sr.exact {
			approx = " (sampled)"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s / %s / %s | %s | %d | %d | %s | %.2f | %d MiB%s | %s | %.2f | %d MiB%s |\n",
			sr.name, f.changes, f.affected/max(f.changes, 1),
			ms(percentile(f.perClient, 50)), ms(percentile(f.perClient, 99)), ms(percentile(f.perClient, 100)),
			ms(percentile(f.perChange, 100)), f.missing, f.unaffected, byteSize(sr.bytes),
			sr.cpCPU, sr.cpPeak>>20, approx, watchRange(sr.watchesMin, sr.watchesMax), sr.consulCPU, sr.consulPeak>>20, approx)
	}
	fmt.Fprintln(w)
	for _, sr := range r.scenarios {
		f := figures(sr)
		n := float64(max(f.changes, 1))
		aboveIdle := sr.cpCPU - r.idleCPU*sr.window.Seconds()
		fmt.Fprintf(w, "  %-10s per change p50 %s p99 %s; %v window; CP CPU %.3f s per change (%.3f s above idle); load generator CPU %.3f s per change; %s received per change\n",
			sr.name, ms(percentile(f.perChange, 50)), ms(percentile(f.perChange, 99)), sr.window.Round(time.Millisecond),
			sr.cpCPU/n, aboveIdle/n, sr.loadgenCPU/n, byteSize(sr.bytes/int64(n)))
	}
	return r.checkTargets(w)
}

func (r report) checkTargets(w io.Writer) bool {
	ok := true
	check := func(what string, pass bool) {
		mark := "ok"
		if !pass {
			mark, ok = "MISSED", false
		}
		fmt.Fprintf(w, "  target %-52s %s\n", what, mark)
	}
	fmt.Fprintln(w)
	for _, sr := range r.scenarios {
		f := figures(sr)
		switch sr.name {
		case scenarioServices:
			check("services: p99 convergence per change ≤ 1 s", percentile(f.perChange, 99) <= targetP99 && f.missing == 0)
		case scenarioFanOut:
			check("fan-out: p99 convergence per sidecar ≤ 1 s", percentile(f.perClient, 99) <= targetFanOutP99 && f.missing == 0)
		case scenarioMeshWide:
			check("mesh-wide: p99 convergence per sidecar ≤ 2 s", percentile(f.perClient, 99) <= targetMeshWideP99 && f.missing == 0)
		}
	}
	check("control-plane peak RSS ≤ 500 MB", r.peakRSS <= targetRSS)
	check("no stream errors", r.streamErrors == 0)
	return ok
}

func watchRange(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(hi)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

func byteSize(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
