package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/weft-mesh/weft/bench/internal/results"
)

// loadResult is what one run of load measured.
type loadResult struct {
	// Rate is the units per second achieved.
	Rate float64
	// Latency percentiles, in milliseconds; zero for a streaming run.
	Latency results.Latency
	// OK and All count the units that succeeded and every unit tried.
	OK, All int64
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

// load is how to drive one workload with fortio.
type load struct {
	fortio, dir string
	conns       int
	d           time.Duration
}

// run drives w's traffic to addr at rate (0: as fast as it goes, fortio's
// saturation) and reads fortio's JSON result. The histogram's finest
// buckets are 10 µs (fortio's default is 1 ms, too coarse for a
// sub-millisecond p50); connections are spread over the period
// (-uniform), so the load arrives at a fixed rate rather than in bursts.
func (l load) run(name string, w workload, addr string, rate int) (loadResult, error) {
	out := filepath.Join(l.dir, name+"-fortio.json")
	args := []string{"load", "-quiet", "-qps", strconv.Itoa(rate), "-c", strconv.Itoa(l.conns), "-t", l.d.String(),
		"-uniform", "-r", "0.00001", "-p", "50,90,99,99.9", "-json", out}
	args = append(append(args, w.fortioArgs...), w.target(addr))
	cmd := exec.Command(l.fortio, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return loadResult{}, fmt.Errorf("fortio %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return loadResult{}, err
	}
	return parseFortio(b, w.okCode)
}

// parseFortio reads fortio's JSON result; okCode is the return code of a
// success ("200", gRPC's "SERVING", TCP's "OK").
func parseFortio(b []byte, okCode string) (loadResult, error) {
	var f fortioJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return loadResult{}, fmt.Errorf("fortio output: %w", err)
	}
	r := loadResult{Rate: f.ActualQPS, OK: f.RetCodes[okCode], All: f.DurationHistogram.Count}
	for _, p := range f.DurationHistogram.Percentiles {
		ms := p.Value * 1000
		switch p.Percentile {
		case 50:
			r.Latency.P50 = ms
		case 90:
			r.Latency.P90 = ms
		case 99:
			r.Latency.P99 = ms
		case 99.9:
			r.Latency.P999 = ms
		}
	}
	return r, nil
}

// median is the middle value of v (the upper one of an even count); v is
// sorted in place.
func median[T cmp.Ordered](v []T) T {
	var zero T
	if len(v) == 0 {
		return zero
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// medianLatency takes the median of each percentile over rounds.
func medianLatency(rs []loadResult) results.Latency {
	pick := func(f func(results.Latency) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r.Latency)
		}
		return median(v)
	}
	return results.Latency{
		P50:  pick(func(l results.Latency) float64 { return l.P50 }),
		P90:  pick(func(l results.Latency) float64 { return l.P90 }),
		P99:  pick(func(l results.Latency) float64 { return l.P99 }),
		P999: pick(func(l results.Latency) float64 { return l.P999 }),
	}
}
