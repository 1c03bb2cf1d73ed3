package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/testproc"
)

// soakReport is what a soak run writes to soak.json and plots in
// soak.svg: the schedule as run, and per interval ("minute" in the
// 5-minute run) the requests' outcomes, latency per protocol, and each
// process's memory and goroutines.
type soakReport struct {
	Schedule        string         `json:"schedule"`
	Date            string         `json:"date"`
	Race            bool           `json:"race"` // the binaries ran with the race detector
	LoadSeconds     float64        `json:"load_seconds"`
	IntervalSeconds float64        `json:"interval_seconds"`
	RatePerProtocol int            `json:"rate_per_protocol"`
	LeafTTL         string         `json:"leaf_ttl"`
	Faults          []faultRun     `json:"faults"`
	Intervals       []soakInterval `json:"intervals"`
	Total           soakCounts     `json:"total"`
	// FirstFailures lists up to 20 failed requests: protocol, time, error.
	FirstFailures []string `json:"first_failures"`
	// FailureKinds counts failed requests by protocol and error, with
	// digits (ports, times) masked.
	FailureKinds map[string]int `json:"failure_kinds"`
	// Goroutines of each process before the load and once it settled
	// after the load stopped.
	GoroutinesBefore map[string]int `json:"goroutines_before"`
	// Restarted lists the processes restarted during the load (a new
	// PID): their first interval's memory may be of an earlier process.
	Restarted       []string       `json:"restarted"`
	GoroutinesAfter map[string]int `json:"goroutines_after"`
}

// faultRun is when a fault of the schedule ran, from the load's start.
type faultRun struct {
	Name   string  `json:"name"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

type soakCounts struct {
	Sent   int `json:"sent"`
	OK     int `json:"ok"`
	Denied int `json:"denied"` // refused by an intention
	Failed int `json:"failed"`
	// SuccessRate is OK / (Sent − Denied).
	SuccessRate float64 `json:"success_rate"`
}

func (c *soakCounts) add(o outcome) {
	c.Sent++
	switch o {
	case outcomeOK:
		c.OK++
	case outcomeDenied:
		c.Denied++
	default:
		c.Failed++
	}
	c.SuccessRate = 1
	if n := c.Sent - c.Denied; n > 0 {
		c.SuccessRate = float64(c.OK) / float64(n)
	}
}

type soakInterval struct {
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	soakCounts
	// Latency of the successful requests, by protocol.
	Latency map[string]latencyMs `json:"latency"`
	// Procs is each process's memory (mean of the interval's readings),
	// goroutines and PID (the last reading's).
	Procs map[string]procFigures `json:"procs"`
}

type latencyMs struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

type procFigures struct {
	PID    int     `json:"pid"`
	RSSMB  float64 `json:"rss_mb"`
	AnonMB float64 `json:"rss_anon_mb"` // RssAnon: RSS without file pages
	// HeapGoalMB is the Go runtime's heap goal (go_memstats_next_gc_bytes),
	// twice the heap live after the last collection.
	HeapGoalMB float64 `json:"heap_goal_mb"`
	Goroutines int     `json:"goroutines"`
}

// buildReport sorts the samples into the schedule's intervals.
func buildReport(sched soakSchedule, faults []faultRun, samples []sample, procs []procSample) *soakReport {
	r := &soakReport{Schedule: sched.name, Date: time.Now().UTC().Format(time.RFC3339), Race: testproc.Race,
		LoadSeconds: sched.load.Seconds(), IntervalSeconds: sched.interval.Seconds(), RatePerProtocol: sched.rate,
		LeafTTL: soakLeafTTL, Faults: faults, FailureKinds: map[string]int{}}
	n := int((sched.load + sched.interval - 1) / sched.interval)
	latencies := make([]map[string][]time.Duration, n)
	for i := range n {
		r.Intervals = append(r.Intervals, soakInterval{StartS: (time.Duration(i) * sched.interval).Seconds(),
			EndS: (time.Duration(i+1) * sched.interval).Seconds(), Latency: map[string]latencyMs{}, Procs: map[string]procFigures{}})
		latencies[i] = map[string][]time.Duration{}
	}
	slices.SortFunc(samples, func(a, b sample) int { return int(a.at - b.at) })
	for _, s := range samples {
		i := min(int(s.at/sched.interval), n-1)
		r.Intervals[i].add(s.outcome)
		r.Total.add(s.outcome)
		if s.outcome == outcomeOK {
			latencies[i][s.proto] = append(latencies[i][s.proto], s.took)
		}
		if s.outcome == outcomeFailed {
			r.noteFailure(s)
		}
	}
	for i := range r.Intervals {
		for proto, d := range latencies[i] {
			r.Intervals[i].Latency[proto] = percentiles(d)
		}
	}
	r.addProcs(procs, sched.interval)
	return r
}

// addProcs sets each interval's process figures: the mean of its memory
// readings (a single reading lands anywhere in a GC cycle), the last
// reading's goroutines and PID. A process whose PID changed during the
// load is listed in Restarted.
func (r *soakReport) addProcs(procs []procSample, interval time.Duration) {
	n := map[string]int{} // readings of the current interval, by process
	firstPID := map[string]int{}
	r.Restarted = []string{}
	for _, p := range procs { // in time order
		i := min(int(p.at/interval), len(r.Intervals)-1)
		f, ok := r.Intervals[i].Procs[p.proc]
		if !ok {
			n[p.proc] = 0
		}
		n[p.proc]++
		k := float64(n[p.proc])
		f.RSSMB += (p.rss.total - f.RSSMB) / k
		f.AnonMB += (p.rss.anon - f.AnonMB) / k
		f.HeapGoalMB += (p.heapGoalMB - f.HeapGoalMB) / k
		f.PID, f.Goroutines = p.pid, p.goroutines
		r.Intervals[i].Procs[p.proc] = f
		if first, seen := firstPID[p.proc]; !seen {
			firstPID[p.proc] = p.pid
		} else if first != p.pid && !slices.Contains(r.Restarted, p.proc) {
			r.Restarted = append(r.Restarted, p.proc)
		}
	}
	slices.Sort(r.Restarted)
}

func (r *soakReport) noteFailure(s sample) {
	if len(r.FirstFailures) < 20 {
		r.FirstFailures = append(r.FirstFailures, fmt.Sprintf("%s at %.3fs: %s", s.proto, s.at.Seconds(), s.err))
	}
	kind := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return '#'
		}
		return c
	}, s.err)
	r.FailureKinds[s.proto+": "+kind[:min(len(kind), 120)]]++
}

func percentiles(d []time.Duration) latencyMs {
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(int(q*float64(len(d))), len(d)-1)]) / float64(time.Millisecond)
	}
	return latencyMs{N: len(d), P50: at(0.50), P99: at(0.99)}
}

// write saves the report as soak.json and soak.svg in dir.
func (r *soakReport) write(t *testing.T, dir string) {
	t.Helper()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.svg"), soakChart(r), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("soak: report written to %s", dir)
}

// summary is the report as a table for the test log.
func (r *soakReport) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak %s: %d sent, %d ok, %d denied, %d failed: success %.5f%%\n",
		r.Schedule, r.Total.Sent, r.Total.OK, r.Total.Denied, r.Total.Failed, 100*r.Total.SuccessRate)
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "  fault %-40s %6.1fs – %6.1fs\n", f.Name, f.StartS, f.EndS)
	}
	for _, in := range r.Intervals {
		fmt.Fprintf(&b, "  %3.0f–%3.0fs: %5d sent %4d denied %2d failed;", in.StartS, in.EndS, in.Sent, in.Denied, in.Failed)
		for _, proto := range soakProtocols {
			l := in.Latency[proto]
			fmt.Fprintf(&b, " %s p50 %.1f p99 %.1f ms;", proto, l.P50, l.P99)
		}
		b.WriteString("\n   ")
		for _, name := range slices.Sorted(maps.Keys(in.Procs)) {
			p := in.Procs[name]
			fmt.Fprintf(&b, " %s %.1f MB (anon %.1f, heap goal %.1f) %d g;", shortProcName(name), p.RSSMB, p.AnonMB, p.HeapGoalMB, p.Goroutines)
		}
		b.WriteString("\n")
	}
	for _, kind := range slices.Sorted(maps.Keys(r.FailureKinds)) {
		fmt.Fprintf(&b, "  %5d failed: %s\n", r.FailureKinds[kind], kind)
	}
	for _, f := range r.FirstFailures {
		fmt.Fprintf(&b, "  failed: %s\n", f)
	}
	return b.String()
}

// shortProcName drops the sidecar suffix: api-1-sidecar-proxy → api-1.
func shortProcName(name string) string { return strings.TrimSuffix(name, "-sidecar-proxy") }

// rssGrowth is each sidecar's growth of memory from the first interval
// to the last, as a fraction of the first; restarted says which of them
// ran as another process in the first interval than in the last.
func (r *soakReport) rssGrowth(mem func(procFigures) float64) (growth map[string]float64, restarted map[string]bool) {
	first, last := r.Intervals[0].Procs, r.Intervals[len(r.Intervals)-1].Procs
	growth, restarted = map[string]float64{}, map[string]bool{}
	for name, f := range first {
		if l, ok := last[name]; ok && name != "control-plane" && mem(f) > 0 {
			growth[name] = mem(l)/mem(f) - 1
			restarted[name] = slices.Contains(r.Restarted, name)
		}
	}
	return growth, restarted
}

func totalRSS(p procFigures) float64 { return p.RSSMB }
func anonRSS(p procFigures) float64  { return p.AnonMB }
