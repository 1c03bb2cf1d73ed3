package main

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// Targets of the benchmark on a 2-core machine.
const (
	targetP99 = time.Second
	targetRSS = 500 << 20
)

type report struct {
	flags        flags
	clients      int
	registered   time.Duration
	syncTook     time.Duration
	syncCPU      float64
	changeCPU    float64       // CPU seconds over every change's window
	changeWall   time.Duration // wall time of every change's window
	idleCPU      float64       // CPU seconds per second with nothing changing
	syncMem      procs.Memory
	endMem       procs.Memory
	streamErrors int64
	results      []result
}

// print writes the summary and reports whether every target was met.
func (r report) print(w io.Writer) bool {
	var conv, per []time.Duration
	var bytes int64
	missing, unaffected := 0, 0
	for _, x := range r.results {
		conv = append(conv, x.converged)
		per = append(per, x.perClient...)
		bytes += x.bytes
		missing += len(x.missing)
		unaffected += x.unaffected
	}
	n := len(r.results)
	p99 := percentile(conv, 99)
	fmt.Fprintf(w, "\nControl-plane scale (%d services × %d instances = %d %s ADS clients, %d upstreams each; %d CPUs)\n",
		r.flags.topo.services, r.flags.topo.instances, r.clients, r.flags.mode, r.flags.topo.upstreams, runtime.NumCPU())
	fmt.Fprintf(w, "  Consul registration (catalog API) %v\n", r.registered.Round(time.Millisecond))
	fmt.Fprintf(w, "  initial sync of every client       %v, %.1f CPU s\n", r.syncTook.Round(time.Millisecond), r.syncCPU)
	fmt.Fprintf(w, "  convergence per change (n=%d)      p50 %v  p99 %v  max %v\n", n,
		ms(percentile(conv, 50)), ms(p99), ms(percentile(conv, 100)))
	fmt.Fprintf(w, "  per affected client (n=%d)        p50 %v  p99 %v\n", len(per), ms(percentile(per, 50)), ms(percentile(per, 99)))
	fmt.Fprintf(w, "  bytes received per change          %d (mean)\n", bytes/int64(max(n, 1)))
	fmt.Fprintf(w, "  unaffected clients pushed          %d over all changes; affected clients never updated: %d\n", unaffected, missing)
	fmt.Fprintf(w, "  control plane RSS                  %d MiB after sync, %d MiB at end, peak (VmHWM) %d MiB\n",
		r.syncMem.RSS>>20, r.endMem.RSS>>20, r.endMem.HWM>>20)
	aboveIdle := r.changeCPU - r.idleCPU*r.changeWall.Seconds()
	fmt.Fprintf(w, "  control plane CPU during changes   %.2f s (%.3f s per change; idle rate %.3f CPU s/s; %.3f s per change above idle)\n",
		r.changeCPU, r.changeCPU/float64(max(n, 1)), r.idleCPU, aboveIdle/float64(max(n, 1)))
	fmt.Fprintf(w, "  load generator stream errors       %d\n", r.streamErrors)
	ok := true
	check := func(what string, pass bool) {
		mark := "ok"
		if !pass {
			mark, ok = "MISSED", false
		}
		fmt.Fprintf(w, "  target %-40s %s\n", what, mark)
	}
	check("p99 convergence ≤ 1 s", p99 <= targetP99 && missing == 0)
	check("control-plane peak RSS ≤ 500 MB", r.endMem.HWM <= targetRSS)
	check("no stream errors", r.streamErrors == 0)
	return ok
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
