package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// loadResult is what fortio measured for one scenario.
type loadResult struct {
	QPS      float64
	P50, P99 time.Duration
	OK, All  int64
}

type fortioJSON struct {
	ActualQPS         float64
	RetCodes          map[string]int64
	DurationHistogram struct {
		Count       int64
		Percentiles []struct {
			Percentile float64
			Value      float64
		}
	}
}

// runLoad drives url at qps with conns connections for d with fortio.
func runLoad(fortio, dir, name, url string, qps, conns int, d time.Duration) (loadResult, error) {
	out := filepath.Join(dir, name+"-fortio.json")
	cmd := exec.Command(fortio, "load", "-quiet", "-qps", fmt.Sprint(qps), "-c", fmt.Sprint(conns),
		"-t", d.String(), "-p", "50,99", "-json", out, url)
	if b, err := cmd.CombinedOutput(); err != nil {
		return loadResult{}, fmt.Errorf("fortio %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return loadResult{}, err
	}
	var f fortioJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return loadResult{}, fmt.Errorf("fortio %s output: %w", name, err)
	}
	r := loadResult{QPS: f.ActualQPS, OK: f.RetCodes["200"], All: f.DurationHistogram.Count}
	for _, p := range f.DurationHistogram.Percentiles {
		d := time.Duration(p.Value * float64(time.Second))
		switch p.Percentile {
		case 50:
			r.P50 = d
		case 99:
			r.P99 = d
		}
	}
	return r, nil
}
