package main

import (
	"fmt"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/bench/internal/results"
)

// deployment is one peer's proxies in front of one backend; the
// workloads on that backend share it.
type deployment struct {
	peer peer
	b    backend
	addr string
	// ps are the proxy processes, client side first; idle their memory
	// once idle.
	ps   []*procs.Proc
	idle []procs.Memory
}

// scenario is one workload through one deployment, and what its runs
// measured, round by round.
type scenario struct {
	w workload
	d *deployment
	// fixed are the fixed-rate runs, saturation the saturation runs'
	// rates.
	fixed      []loadResult
	saturation []float64
	// units and failed count every run; fixedUnits the fixed-rate runs,
	// over which cpu (per proxy process) and cpCPU (control plane) are
	// summed, in seconds.
	units, failed, fixedUnits int64
	cpu                       []float64
	cpCPU                     float64
	// switches are, per proxy process, its context switches over the
	// fixed-rate runs.
	switches []int64
	// rssLoad is, per fixed-rate run, each proxy process's largest RSS.
	rssLoad [][]int64
}

func (s *scenario) name(kind string, round int) string {
	return fmt.Sprintf("%s-%s-%s-%d", s.w.id, s.d.peer.describe().ID, kind, round)
}

// runFixed runs the workload at the fixed rate, measuring the proxies'
// CPU and sampling their memory meanwhile, and profiling Weft's sidecars
// with -profile: the CPU-per-request target is judged at this rate, where
// waking up costs more than parsing.
func (s *scenario) runFixed(l load, rate, round int, prof *profiles) (loadResult, error) {
	before, cpBefore := cpuTimes(s.d.ps), cpuTime(s.d.peer.controlPlane())
	swBefore := contextSwitches(s.d.ps)
	stop := sampleRSS(s.d.ps, 250*time.Millisecond)
	profiled := prof.start(s.name("fixed", round), s.d.ps, l.d-time.Second)
	res, err := l.run(s.name("fixed", round), s.w, s.d.addr, rate)
	peak := stop()
	if perr := profiled(); err == nil {
		err = perr
	}
	if err != nil {
		return res, err
	}
	after, swAfter := cpuTimes(s.d.ps), contextSwitches(s.d.ps)
	if s.cpu == nil {
		s.cpu = make([]float64, len(s.d.ps))
		s.switches = make([]int64, len(s.d.ps))
	}
	for i := range s.cpu {
		s.cpu[i] += after[i] - before[i]
		s.switches[i] += swAfter[i] - swBefore[i]
	}
	s.cpCPU += cpuTime(s.d.peer.controlPlane()) - cpBefore
	s.fixed = append(s.fixed, res)
	s.rssLoad = append(s.rssLoad, peak)
	s.fixedUnits += res.All
	s.count(res)
	return res, nil
}

// runSaturation runs the workload as fast as it goes: fortio at -qps 0,
// or the TCP stream, profiling Weft's sidecars meanwhile with -profile.
func (s *scenario) runSaturation(l load, streamConns, round int, prof *profiles) (loadResult, error) {
	var res loadResult
	var err error
	profiled := prof.start(s.name("saturation", round), s.d.ps, l.d-time.Second)
	if s.w.streams {
		res, err = stream(s.d.addr, streamConns, l.d)
	} else {
		res, err = l.run(s.name("saturation", round), s.w, s.d.addr, 0)
	}
	if perr := profiled(); err == nil {
		err = perr
	}
	if err != nil {
		return res, err
	}
	s.saturation = append(s.saturation, res.Rate)
	s.count(res)
	return res, nil
}

func (s *scenario) count(r loadResult) {
	s.units += r.All
	s.failed += r.All - r.OK
}

// result is the scenario's figures: medians over the rounds.
func (s *scenario) result() results.PeerResult {
	rates := make([]float64, len(s.fixed))
	for i, f := range s.fixed {
		rates[i] = f.Rate
	}
	r := results.PeerResult{
		Peer: s.d.peer.describe().ID, Throughput: median(append([]float64(nil), s.saturation...)), Rate: median(rates),
		LatencyMs: medianLatency(s.fixed), Units: s.units, Failed: s.failed,
	}
	per1k := func(cpu float64) float64 {
		if s.fixedUnits == 0 {
			return 0
		}
		return cpu / (float64(s.fixedUnits) / 1000)
	}
	for i, p := range s.d.ps {
		loads := make([]int64, len(s.rssLoad))
		for round, peaks := range s.rssLoad {
			loads[round] = peaks[i]
		}
		proc := results.Proc{Name: p.Name, RSSIdleMB: mb(s.d.idle[i].RSS), AnonIdleMB: mb(s.d.idle[i].Anon),
			PSSIdleMB: mb(s.d.idle[i].PSS), RSSLoadMB: mb(median(loads))}
		if s.cpu != nil {
			proc.CPUPer1k = per1k(s.cpu[i])
			r.CPUPer1k += proc.CPUPer1k
			proc.SwitchesPer1k = per1k(float64(s.switches[i]))
			r.SwitchesPer1k += proc.SwitchesPer1k
		}
		r.RSSIdleMB, r.RSSLoadMB = max(r.RSSIdleMB, proc.RSSIdleMB), max(r.RSSLoadMB, proc.RSSLoadMB)
		r.Procs = append(r.Procs, proc)
	}
	if s.d.peer.controlPlane() != nil {
		r.ControlPlaneCPUPer1k = per1k(s.cpCPU)
	}
	return r
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// cpuTimes are the CPU seconds each of ps has used; a process that
// cannot be read counts 0.
func cpuTimes(ps []*procs.Proc) []float64 {
	t := make([]float64, len(ps))
	for i, p := range ps {
		t[i] = cpuTime(p)
	}
	return t
}

// contextSwitches are the context switches of each of ps; a process
// that cannot be read counts 0.
func contextSwitches(ps []*procs.Proc) []int64 {
	n := make([]int64, len(ps))
	for i, p := range ps {
		n[i], _ = p.ContextSwitches()
	}
	return n
}

func cpuTime(p *procs.Proc) float64 {
	if p == nil {
		return 0
	}
	s, _ := p.CPUSeconds()
	return s
}

// sampleRSS reads the RSS of ps every interval until the returned
// function is called, which returns each one's largest.
func sampleRSS(ps []*procs.Proc, every time.Duration) (stop func() []int64) {
	quit, done := make(chan struct{}), make(chan []int64)
	go func() {
		peak := make([]int64, len(ps))
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			for i, p := range ps {
				if m, err := p.Memory(); err == nil {
					peak[i] = max(peak[i], m.RSS)
				}
			}
			select {
			case <-quit:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() []int64 { close(quit); return <-done }
}

// readiness is one fresh client-side proxy's start.
type readiness struct{ ready, served time.Duration }

// measureReadiness starts a fresh client-side proxy of r and measures the
// time from starting it to its readiness probe answering 200, and to the
// first request served through it.
func measureReadiness(r restarter) (readiness, error) {
	const within = 10 * time.Second
	start := time.Now()
	p, url, probeURL, err := r.startClient()
	if err != nil {
		return readiness{}, err
	}
	defer p.Stop()
	var out readiness
	probed := make(chan error, 1)
	go func() {
		if probeURL == "" {
			probed <- nil
			return
		}
		err := sample(within, func() error { return getOK(probeURL) })
		out.ready = time.Since(start)
		probed <- err
	}()
	err = sample(within, func() error { return getOK(url) })
	out.served = time.Since(start)
	if perr := <-probed; err == nil {
		err = perr
	}
	if err != nil {
		return readiness{}, fmt.Errorf("%s: %w (log %s)", p.Name, err, p.Log)
	}
	return out, nil
}

// sample calls check every millisecond until it succeeds or within has
// passed. It measures when a condition starts to hold, so its interval
// stays at the resolution wanted, where internal/poll's pauses, which
// grow with the time waited, would be the measurement's error.
func sample(within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-time.After(time.Millisecond) // the next sample, not a synchronisation
	}
}
