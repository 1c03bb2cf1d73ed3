package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRenderReadme: the block is replaced by the newest full delta run of
// each scale, side by side, with each target's verdict from the file's
// figures; older runs, SotW runs and partial runs are not shown, and the
// text around the block is kept.
func TestRenderReadme(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r resultsFile) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	run := func(clients int, date time.Time, commit string, fanOutP99 float64, scenarios []string, mode string) resultsFile {
		r := resultsFile{Date: date, Commit: commit, Clients: clients, SyncMs: 1500, SyncCPUSeconds: 1.2,
			RSSAfterSyncMiB: 290, PeakRSSMiB: 610,
			Settings: settings{Services: clients / 2, Instances: 2, Upstreams: 3, Mode: mode, Scenarios: scenarios}}
		for _, name := range scenarios {
			rec := scenarioRecord{Name: name, Changes: 4, Bytes: 4 << 20, CPCPUSeconds: 2, LoadgenCPUSeconds: 1, ConsulWatchesMax: 1014, ConsulPeakRSSMiB: 300,
				ConvergenceMs: percentiles{P50: 100, P99: 400, Max: 500}, PerChangeMs: percentiles{P50: 20, P99: 60, Max: 70}}
			if name == "fan-out" {
				rec.ConvergenceMs.P99 = fanOutP99
			}
			r.Scenarios = append(r.Scenarios, rec)
		}
		return r
	}
	write("old.json", run(2000, day.Add(-time.Hour), "old", 10, allScenarios, "delta"))
	write("new.json", run(2000, day, "new", 1500, allScenarios, "delta"))
	write("sotw.json", run(2000, day.Add(time.Hour), "sotw", 10, allScenarios, "sotw"))
	write("partial.json", run(2000, day.Add(time.Hour), "partial", 10, []string{"fan-out"}, "delta"))
	write("big.json", run(10000, day, "big", 900, allScenarios, "delta"))

	readme := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(readme, []byte("before\n"+readmeBegin+"\nstale\n"+readmeEnd+"\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := renderReadme(dir, readme); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"before\n" + readmeBegin + "\n", readmeEnd + "\nafter\n",
		"| | 2,000 sidecars | 10,000 sidecars | target |",
		"commit new ([results](",
		"commit big ([results](",
		"| fan-out: convergence p50 / p99 / max | 100 ms / 1.50 s / 500 ms **MISS** | 100 ms / 900 ms / 500 ms **PASS** | p99 ≤ 1 s |",
		"| services: convergence p50 / p99 / max | 20 ms / 60 ms / 70 ms **PASS** |",
		"| fan-out: CPU s per change of the control plane, of the load generator; bytes received per change | 0.500 s, 0.250 s; 1.0 MiB |",
		"290 MiB / 610 MiB **MISS**",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the rendered README lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"stale", "commit old", "commit sotw", "commit partial"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("the rendered README holds %q:\n%s", unwanted, got)
		}
	}
}
