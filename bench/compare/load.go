package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// medianLoad sums the requests of rs and takes the median of their QPS,
// p50 and p99.
func medianLoad(rs []loadResult) loadResult {
	var out loadResult
	var qps []float64
	var p50, p99 []time.Duration
	for _, r := range rs {
		out.OK += r.OK
		out.All += r.All
		qps = append(qps, r.QPS)
		p50 = append(p50, r.P50)
		p99 = append(p99, r.P99)
	}
	out.QPS, out.P50, out.P99 = median(qps), median(p50), median(p99)
	return out
}

func median[T cmp.Ordered](v []T) T {
	var zero T
	if len(v) == 0 {
		return zero
	}
	slices.Sort(v)
	return v[len(v)/2]
}
