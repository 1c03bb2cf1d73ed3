package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// Scenarios (-scenario), run in this order.
const (
	// scenarioServices: random single-service changes, each reaching the
	// few sidecars that call the service (the benchmark's first scenario).
	scenarioServices = "services"
	// scenarioFanOut: the instances of the hot service, an upstream of
	// every sidecar, flip health.
	scenarioFanOut = "fan-out"
	// scenarioMeshWide: a CA root rotation, then a wildcard deny intention
	// added and removed.
	scenarioMeshWide = "mesh-wide"
	// scenarioChurn: 5 % of all instances re-registered within 10 s, like
	// a rolling deploy of everything.
	scenarioChurn = "churn"
)

var allScenarios = []string{scenarioServices, scenarioFanOut, scenarioMeshWide, scenarioChurn}

// parseScenarios reads -scenario: "all", or a comma-separated list of
// scenario names; the result is in run order, without repeats.
func parseScenarios(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return allScenarios, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(allScenarios, name) {
			return nil, fmt.Errorf("-scenario %q: unknown scenario %q; want all or some of %s", s, name, strings.Join(allScenarios, ", "))
		}
		want[name] = true
	}
	var out []string
	for _, name := range allScenarios {
		if want[name] {
			out = append(out, name)
		}
	}
	return out, nil
}

// bench is what the scenarios act on and measure.
type bench struct {
	flags     flags
	consul    *api.Client
	lg        *loadgenAPI
	lgProc    *procs.Proc // the load generator, on the same cores
	cp, agent *procs.Proc
	adminAddr string
	clients   []string // every simulated sidecar's node ID
}

// scenarioResult is what one scenario measured.
type scenarioResult struct {
	name    string
	changes []result // each measured change; churn: the whole deploy, one
	window  time.Duration
	// CPU seconds of the control plane, of Consul and of the load
	// generator (the simulated sidecars, on the same cores) over the
	// window.
	cpCPU, consulCPU, loadgenCPU float64
	// Peak RSS over the window, bytes; exact is false when the kernel
	// could not reset VmHWM and the figures are the sampled highest.
	cpPeak, consulPeak int64
	exact              bool
	// Blocking queries the control plane held open, lowest and highest.
	watchesMin, watchesMax int
	bytes                  int64 // bytes the load generator received
	streamErrors           int64
}

// runScenario runs one scenario and measures the processes around it.
func (b *bench) runScenario(name string) (scenarioResult, error) {
	sr := scenarioResult{name: name, exact: b.cp.ResetPeak() == nil && b.agent.ResetPeak() == nil}
	before, err := b.lg.status()
	if err != nil {
		return sr, err
	}
	cpCPU, _ := b.cp.CPUSeconds()
	consulCPU, _ := b.agent.CPUSeconds()
	lgCPU, _ := b.lgProc.CPUSeconds()
	s := startSampler(b.cp, b.agent, b.adminAddr)
	start := time.Now()
	sr.changes, err = b.scenarioBody(name)
	p := s.stop()
	sr.window = time.Since(start)
	if err != nil {
		return sr, fmt.Errorf("scenario %s: %w", name, err)
	}
	if b.cp.Exited() {
		return sr, fmt.Errorf("scenario %s: the control plane exited (log: %s)", name, b.cp.Log)
	}
	cpEnd, _ := b.cp.CPUSeconds()
	consulEnd, _ := b.agent.CPUSeconds()
	lgEnd, _ := b.lgProc.CPUSeconds()
	sr.cpCPU, sr.consulCPU, sr.loadgenCPU = cpEnd-cpCPU, consulEnd-consulCPU, lgEnd-lgCPU
	sr.cpPeak, sr.consulPeak = p.cpRSS, p.consulRSS
	if sr.exact {
		cm, err1 := b.cp.Memory()
		am, err2 := b.agent.Memory()
		if err1 == nil && err2 == nil {
			sr.cpPeak, sr.consulPeak = max(sr.cpPeak, cm.HWM), max(sr.consulPeak, am.HWM)
		}
	}
	sr.watchesMin, sr.watchesMax = max(p.watchesMin, 0), p.watchesMax
	after, err := b.lg.status()
	if err != nil {
		return sr, err
	}
	sr.bytes, sr.streamErrors = after.Bytes-before.Bytes, after.StreamErrors-before.StreamErrors
	return sr, nil
}

func (b *bench) scenarioBody(name string) ([]result, error) {
	switch name {
	case scenarioServices:
		return b.measureAll(planChanges(b.flags.topo, b.flags.changes, b.flags.seed))
	case scenarioFanOut:
		return b.measureAll(planFanOut(b.flags.topo, b.clients))
	case scenarioMeshWide:
		return b.measureAll(planMeshWide(b.adminAddr, b.clients))
	case scenarioChurn:
		r, err := b.churn()
		return []result{r}, err
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// measureAll measures changes one after the other, printing a line each.
func (b *bench) measureAll(changes []change) ([]result, error) {
	var out []result
	for i, ch := range changes {
		r, err := measure(b.consul, b.lg, ch)
		if err != nil {
			return out, err
		}
		if b.cp.Exited() {
			return out, fmt.Errorf("the control plane exited (log: %s)", b.cp.Log)
		}
		printResult(i+1, r)
		out = append(out, r)
	}
	return out, nil
}

func printResult(n int, r result) {
	sp := spreadOf(r.perClient)
	fmt.Printf("  %2d  %-36s %5d affected  converged %7.1f ms (first %.0f, p50 %.0f)  %9d bytes  %d unaffected clients pushed  ACKs: %s\n",
		n, r.change.what, len(r.change.affected), float64(r.converged.Microseconds())/1000, sp.First, sp.P50, r.bytes, r.unaffected, typeCounts(r.typesACKed))
}

// typeCounts shows ACK counts by type, named short: "EDS 2000, SDS 4000".
func typeCounts(byType map[string]int) string {
	short := map[string]string{resourcev3.ClusterType: "CDS", resourcev3.EndpointType: "EDS", resourcev3.ListenerType: "LDS",
		resourcev3.RouteType: "RDS", resourcev3.SecretType: "SDS"}
	var parts []string
	for _, typeURL := range subscribed {
		if n := byType[typeURL]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", short[typeURL], n))
		}
	}
	return strings.Join(parts, ", ")
}

// subscribed are the types the load generator's clients subscribe to.
var subscribed = []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType}
