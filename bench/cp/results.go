package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weft-mesh/weft/bench/internal/results"
	"github.com/weft-mesh/weft/controlplane"
)

// resultsFile is one run of make bench-cp, written to bench/results/cp/
// (a directory of its own: the files of bench/results are make bench's,
// whose newest bench/report renders) under fileName. Durations are
// milliseconds, sizes MiB.
type resultsFile struct {
	Date     time.Time       `json:"date"`
	Commit   string          `json:"commit"`
	Dirty    bool            `json:"dirty,omitempty"`
	Machine  results.Machine `json:"machine"`
	Settings settings        `json:"settings"`
	// Clients is the number of simulated sidecars (ADS streams).
	Clients      int     `json:"clients"`
	RegisteredMs float64 `json:"registered_ms"`
	// SyncMs is from the load generator's start until every client has
	// ACKed every type; SyncCPUSeconds is the control plane's CPU then.
	SyncMs         float64 `json:"sync_ms"`
	SyncCPUSeconds float64 `json:"sync_cpu_seconds"`
	// IdleCPURate is the control plane's CPU seconds per second, synced
	// and with nothing changing.
	IdleCPURate     float64 `json:"idle_cpu_rate"`
	RSSAfterSyncMiB float64 `json:"rss_after_sync_mib"`
	RSSEndMiB       float64 `json:"rss_end_mib"`
	// PeakRSSMiB is the control plane's VmHWM over the whole run.
	PeakRSSMiB   float64          `json:"peak_rss_mib"`
	StreamErrors int64            `json:"stream_errors"`
	Scenarios    []scenarioRecord `json:"scenarios"`
}

type settings struct {
	Services  int      `json:"services"`
	Instances int      `json:"instances"`
	Upstreams int      `json:"upstreams"`
	Nodes     int      `json:"nodes"`
	Mode      string   `json:"mode"`
	Seed      uint64   `json:"seed"`
	Changes   int      `json:"changes"`
	Scenarios []string `json:"scenarios"`
	// ConsulStreaming is set when the agent ran with its streaming
	// backend (-consul-streaming).
	ConsulStreaming bool `json:"consul_streaming,omitempty"`
	// XDSServer is the control plane's xDS transport (--xds-server);
	// empty in files written before it could be chosen (grpc-go's).
	XDSServer string `json:"xds_server,omitempty"`
}

// scenarioRecord is one scenario's figures (report.print's table row).
type scenarioRecord struct {
	Name    string `json:"name"`
	Changes int    `json:"changes"`
	// Affected counts (change, affected sidecar) pairs; Missing those that
	// never ACKed the change; Unaffected the other sidecars that ACKed
	// something during a change's window.
	Affected   int `json:"affected"`
	Missing    int `json:"missing"`
	Unaffected int `json:"unaffected_pushed"`
	// ConvergenceMs is per affected sidecar (write → its ACK of the
	// change); PerChangeMs per change (write → the last affected
	// sidecar's ACK).
	ConvergenceMs percentiles `json:"convergence_ms"`
	PerChangeMs   percentiles `json:"per_change_ms"`
	Bytes         int64       `json:"bytes"`
	WindowMs      float64     `json:"window_ms"`
	CPCPUSeconds  float64     `json:"cp_cpu_seconds"`
	CPPeakRSSMiB  float64     `json:"cp_peak_rss_mib"`
	// PeakExact is false when the peaks are sampled (every 100 ms)
	// because the kernel could not reset VmHWM.
	PeakExact        bool    `json:"peak_exact"`
	ConsulWatchesMin int     `json:"consul_watches_min"`
	ConsulWatchesMax int     `json:"consul_watches_max"`
	ConsulCPUSeconds float64 `json:"consul_cpu_seconds"`
	ConsulPeakRSSMiB float64 `json:"consul_peak_rss_mib"`
	// LoadgenCPUSeconds is the load generator's CPU over the window: the
	// simulated sidecars share the control plane's cores.
	LoadgenCPUSeconds float64        `json:"loadgen_cpu_seconds"`
	StreamErrors      int64          `json:"stream_errors"`
	PerChange         []changeRecord `json:"per_change"`
}

type percentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type changeRecord struct {
	What        string  `json:"what"`
	Affected    int     `json:"affected"`
	ConvergedMs float64 `json:"converged_ms"`
	Bytes       int64   `json:"bytes"`
	Unaffected  int     `json:"unaffected_pushed"`
	Missing     int     `json:"missing"`
	// Spread is when the affected clients ACKed it, from the write:
	// whether a slow change started late or ended in a long tail.
	Spread spread `json:"acked_ms"`
}

// spread is a change's per-client convergence: the first client, the
// 10th, 50th and 90th percentiles, and the last.
type spread struct {
	First float64 `json:"first"`
	P10   float64 `json:"p10"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	Last  float64 `json:"last"`
}

func spreadOf(ds []time.Duration) spread {
	if len(ds) == 0 {
		return spread{}
	}
	return spread{First: msf(slices.Min(ds)), P10: msf(percentile(ds, 10)), P50: msf(percentile(ds, 50)),
		P90: msf(percentile(ds, 90)), Last: msf(slices.Max(ds))}
}

// Figures are kept to 4 significant digits, the precision they have.
func msf(d time.Duration) float64 { return results.Sig4(float64(d.Microseconds()) / 1000) }
func mib(n int64) float64         { return results.Sig4(float64(n) / (1 << 20)) }
func sec(s float64) float64       { return results.Sig4(s) }

func percentilesOf(ds []time.Duration) percentiles {
	return percentiles{P50: msf(percentile(ds, 50)), P99: msf(percentile(ds, 99)), Max: msf(percentile(ds, 100))}
}

// results turns the report into a results file.
func (r report) results(root string, m results.Machine) resultsFile {
	m.LoadEnd = results.LoadAverage()
	out := resultsFile{Date: time.Now().UTC(), Machine: m,
		Settings: settings{Services: r.flags.topo.services, Instances: r.flags.topo.instances, Upstreams: r.flags.topo.upstreams,
			Nodes: r.flags.topo.nodes, Mode: r.flags.mode, Seed: r.flags.seed, Changes: r.flags.changes, Scenarios: r.flags.scenarios,
			ConsulStreaming: r.flags.consulStreaming, XDSServer: r.flags.xdsServer},
		Clients: r.clients, RegisteredMs: msf(r.registered), SyncMs: msf(r.syncTook), SyncCPUSeconds: sec(r.syncCPU), IdleCPURate: sec(r.idleCPU),
		RSSAfterSyncMiB: mib(r.syncMem.RSS), RSSEndMiB: mib(r.endMem.RSS), PeakRSSMiB: mib(r.peakRSS), StreamErrors: r.streamErrors}
	out.Commit, out.Dirty = results.Commit(root)
	for _, sr := range r.scenarios {
		f := figures(sr)
		rec := scenarioRecord{Name: sr.name, Changes: f.changes, Affected: f.affected, Missing: f.missing, Unaffected: f.unaffected,
			ConvergenceMs: percentilesOf(f.perClient), PerChangeMs: percentilesOf(f.perChange), Bytes: sr.bytes,
			WindowMs: msf(sr.window), CPCPUSeconds: sec(sr.cpCPU), CPPeakRSSMiB: mib(sr.cpPeak), PeakExact: sr.exact,
			ConsulWatchesMin: sr.watchesMin, ConsulWatchesMax: sr.watchesMax, ConsulCPUSeconds: sec(sr.consulCPU),
			ConsulPeakRSSMiB: mib(sr.consulPeak), LoadgenCPUSeconds: sec(sr.loadgenCPU), StreamErrors: sr.streamErrors}
		for _, c := range sr.changes {
			rec.PerChange = append(rec.PerChange, changeRecord{What: c.change.what, Affected: len(c.change.affected),
				ConvergedMs: msf(c.converged), Bytes: c.bytes, Unaffected: c.unaffected, Missing: len(c.missing), Spread: spreadOf(c.perClient)})
		}
		out.Scenarios = append(out.Scenarios, rec)
	}
	return out
}

// fileName is <date>-<commit>-<services>x<instances>-<mode>.json, and
// the scenarios when not all ran: runs of one commit at other scales or
// with other scenarios do not overwrite each other.
func (f resultsFile) fileName() string {
	name := fmt.Sprintf("%s-%s-%dx%d-%s", f.Date.Format("2006-01-02"), f.Commit, f.Settings.Services, f.Settings.Instances, f.Settings.Mode)
	if !slices.Equal(f.Settings.Scenarios, allScenarios) {
		name += "-" + strings.Join(f.Settings.Scenarios, "+")
	}
	if f.Settings.ConsulStreaming {
		name += "-consul-streaming"
	}
	if s := f.Settings.XDSServer; s != "" && s != controlplane.XDSServerLean {
		name += "-xds-" + s
	}
	return name + ".json"
}

// write writes the file as indented JSON to dir/f.fileName().
func (f resultsFile) write(dir string) (string, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, f.fileName())
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}
