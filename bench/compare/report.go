package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

type row struct {
	name   string
	procs  int
	idle   procs.Memory // the proxy processes' memory after sitting idle, once serving
	loaded procs.Memory // the same right after the load
	cpu    float64      // cores used by the proxy processes during the load
	load   loadResult
}

// Weft's targets (README, Performance).
const (
	maxSidecarRSS       = 15 << 20
	maxCoresPer1000RPS  = 0.1 // per sidecar
	maxP99VersusHAProxy = 1.5
)

// report prints the comparison table and Weft's verdicts; false if a
// target was missed. Memory columns are per process (the HAProxy pair is
// one process, the others two).
func report(w io.Writer, rows []row, qps int) bool {
	base := rows[0].load.P99
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tqps\tok/all\tp50\tp99\tadded p99\tcores/1k rps\tidle RSS/proc\tanon\tPSS\tRSS after load\t\n")
	for _, r := range rows {
		per1k := 0.0
		if r.load.QPS > 0 {
			per1k = r.cpu / (r.load.QPS / 1000)
		}
		n := int64(max(r.procs, 1))
		fmt.Fprintf(tw, "%s\t%.0f\t%d/%d\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t\n", r.name, r.load.QPS, r.load.OK, r.load.All,
			ms(r.load.P50), ms(r.load.P99), ms(r.load.P99-base), per1k,
			mb(r.idle.RSS/n), mb(r.idle.Anon/n), mb(r.idle.PSS/n), mb(r.loaded.RSS/n))
	}
	tw.Flush()

	haproxy, weft := rows[1], rows[len(rows)-1]
	ok := true
	verdict := func(pass bool, format string, args ...any) {
		mark := "PASS"
		if !pass {
			mark, ok = "MISS", false
		}
		fmt.Fprintf(w, "  [%s] %s\n", mark, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\nWeft targets at %d rps:\n", qps)
	n := int64(max(weft.procs, 1))
	verdict(weft.idle.RSS/n <= maxSidecarRSS, "idle RSS per sidecar %s ≤ 15 MB (anon %s, PSS %s)", mb(weft.idle.RSS/n), mb(weft.idle.Anon/n), mb(weft.idle.PSS/n))
	perSidecarCores := weft.cpu / float64(n) / (weft.load.QPS / 1000)
	verdict(perSidecarCores <= maxCoresPer1000RPS, "CPU per sidecar %.3f cores per 1,000 rps ≤ 0.1", perSidecarCores)
	hAdded, wAdded := haproxy.load.P99-base, weft.load.P99-base
	verdict(float64(wAdded) <= maxP99VersusHAProxy*float64(max(hAdded, time.Microsecond)),
		"added p99 %s ≤ 1.5 × HAProxy's %s", ms(wAdded), ms(hAdded))
	verdict(weft.load.OK == weft.load.All, "no failed requests (%d/%d)", weft.load.OK, weft.load.All)
	return ok
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
