package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/bench/internal/results"
)

// bench is one run: every deployment, the scenarios on them, and the
// readiness samples.
type bench struct {
	o           options
	e           *env
	l           load
	deployments []*deployment
	scenarios   []*scenario
	// restarters are the peers whose client side is restarted each round
	// to measure readiness, and ready their samples.
	restarters []peer
	ready      map[string][]readiness
}

// readinessPeers are the peers whose readiness is measured.
var readinessPeers = []string{results.PeerHAProxy, results.PeerConsul, results.PeerWeft}

// deploy starts the backends, Consul when a peer needs it, and every
// peer in front of every backend a workload needs; waits until each
// serves; lets them sit idle and reads their memory.
func (b *bench) deploy(peers []peer, ws []workload) error {
	need := map[backend]bool{}
	for _, w := range ws {
		need[w.backend] = true
	}
	if err := b.e.startBackends(need); err != nil {
		return err
	}
	if slices.ContainsFunc(peers, func(p peer) bool { id := p.describe().ID; return id != results.PeerDirect && id != results.PeerHAProxy }) {
		if err := b.e.startConsul(); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(peers, func(p peer) bool { return p.describe().ID == results.PeerHAProxy }) {
		c, err := writeHAProxyCerts(b.e.dir)
		if err != nil {
			return err
		}
		b.e.certs = c
	}
	for _, kind := range []backend{httpBackend, grpcBackend, tcpBackend} {
		if !need[kind] {
			continue
		}
		for _, p := range peers {
			if !p.serves(kind) {
				continue
			}
			addr, ps, err := p.start(kind)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", p.describe().Name, kind, err)
			}
			b.deployments = append(b.deployments, &deployment{peer: p, b: kind, addr: addr, ps: ps})
			if _, ok := p.(restarter); ok && kind == httpBackend && slices.Contains(readinessPeers, p.describe().ID) {
				b.restarters = append(b.restarters, p)
			}
		}
	}
	for _, d := range b.deployments {
		if err := waitServing(d.b, d.addr, 90*time.Second); err != nil {
			return fmt.Errorf("%s, %s: %w (logs in %s)", d.peer.describe().Name, d.b, err, b.e.dir)
		}
	}
	for _, w := range ws {
		for _, d := range b.deployments {
			if d.b == w.backend {
				b.scenarios = append(b.scenarios, &scenario{w: w, d: d})
			}
		}
	}
	fmt.Printf("every scenario serves; idle for %s\n", b.o.idle)
	time.Sleep(b.o.idle) // the idle interval being measured, not synchronisation
	for _, d := range b.deployments {
		d.idle = make([]procs.Memory, len(d.ps))
		for i, p := range d.ps {
			d.idle[i], _ = p.Memory()
		}
	}
	return nil
}

// measure runs the rounds: in each, per workload, every peer's
// fixed-rate run in turn, then every peer's saturation run; then a fresh
// client-side proxy of each peer whose readiness is measured.
func (b *bench) measure(ws []workload) error {
	b.ready = map[string][]readiness{}
	for round := 1; round <= b.o.rounds; round++ {
		for _, w := range ws {
			for _, s := range b.scenarios {
				if s.w.id != w.id {
					continue
				}
				res, err := s.runFixed(b.l, b.o.rate, round, b.e.profiles)
				if err != nil {
					return err
				}
				b.progress(round, s, "fixed", res)
			}
			for _, s := range b.scenarios {
				if s.w.id != w.id {
					continue
				}
				res, err := s.runSaturation(b.l, b.o.streamConns, round, b.e.profiles)
				if err != nil {
					return err
				}
				b.progress(round, s, "saturation", res)
			}
		}
		for _, p := range b.restarters {
			r, err := measureReadiness(p.(restarter))
			if err != nil {
				return err
			}
			id := p.describe().ID
			b.ready[id] = append(b.ready[id], r)
			fmt.Printf("round %d/%d readiness %-14s ready %6.1f ms, first request served %6.1f ms\n", round, b.o.rounds, id, ms(r.ready), ms(r.served))
		}
	}
	return nil
}

func (b *bench) progress(round int, s *scenario, kind string, r loadResult) {
	line := fmt.Sprintf("round %d/%d %-15s %-10s %-14s %8.0f/s", round, b.o.rounds, s.w.id, kind, s.d.peer.describe().ID, r.Rate)
	if kind == "fixed" {
		line += fmt.Sprintf("  p50 %6.2f  p90 %6.2f  p99 %6.2f  p99.9 %6.2f ms", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999)
	}
	if r.OK != r.All {
		line += fmt.Sprintf("  FAILED %d of %d", r.All-r.OK, r.All)
	}
	fmt.Println(line)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fill sets res's workloads and readiness from what was measured.
func (b *bench) fill(res *results.Results) {
	for _, w := range allWorkloads {
		rw := results.Workload{ID: w.id, Name: w.name, Unit: w.unit, Baseline: w.baseline}
		for _, s := range b.scenarios {
			if s.w.id == w.id {
				rw.Results = append(rw.Results, s.result())
			}
		}
		if len(rw.Results) > 0 {
			res.Workloads = append(res.Workloads, rw)
		}
	}
	for _, p := range b.restarters {
		id := p.describe().ID
		samples := b.ready[id]
		ready, served := make([]float64, len(samples)), make([]float64, len(samples))
		for i, r := range samples {
			ready[i], served[i] = ms(r.ready), ms(r.served)
		}
		rd := results.Readiness{Peer: id, ServedMs: median(served), Samples: len(samples)}
		if id == results.PeerWeft {
			rd.ReadyMs = median(ready)
		}
		res.Readiness = append(res.Readiness, rd)
	}
}
