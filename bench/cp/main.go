// Command cp is Weft's control-plane scale benchmark (make bench-cp). It
// runs a Consul dev agent with a catalog of 1,000 services × 2 sidecar
// instances (each calling 3 services and the hot service, an upstream of
// every sidecar), the control plane (weft control-plane, built fresh)
// and, in a separate process, a load generator holding one ADS stream per
// sidecar (bench/cp/loadgen). Once every stream has ACKed every type, it
// runs the scenarios (-scenario) in turn: random single-service changes,
// fan-out (the hot service's instances flip health), mesh-wide (a CA root
// rotation, a wildcard intention added and removed) and churn (5 % of the
// instances re-registered within 10 s). For each it measures the time
// from the write to the ACK of every affected sidecar, the bytes pushed,
// the control plane's CPU and peak RSS, and the load on Consul (the
// control plane's open blocking queries, Consul's CPU and peak RSS); it
// prints a table, checks the targets and writes bench/results/cp/.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/bench/internal/results"
	"github.com/weft-mesh/weft/controlplane"
	"github.com/weft-mesh/weft/internal/poll"
)

type flags struct {
	topo        topology
	changes     int
	mode        string
	seed        uint64
	strict      bool
	keep        bool
	heapProfile string // file the synced control plane's heap profile goes to; "": none
	// cpuProfile prefixes the files the control plane's CPU profile of
	// each scenario goes to ("": none), cpuProfileFor long from its start.
	cpuProfile    string
	cpuProfileFor time.Duration
	// consulStreaming runs the agent with use_streaming_backend = true.
	consulStreaming bool
	// xdsServer is the control plane's --xds-server.
	xdsServer string
	scenarios []string
	results   string
}

func main() {
	var f flags
	flag.IntVar(&f.topo.services, "services", 1000, "services in the catalog")
	flag.IntVar(&f.topo.instances, "instances", 2, "sidecar instances per service; one xDS client each")
	flag.IntVar(&f.topo.upstreams, "upstreams", 3, "upstream services per sidecar")
	flag.IntVar(&f.topo.nodes, "nodes", 50, "Consul nodes the instances are spread over")
	flag.IntVar(&f.changes, "changes", 40, "single-service changes the services scenario measures")
	flag.StringVar(&f.mode, "mode", "delta", "ADS variant of the simulated clients: delta or sotw")
	flag.Uint64Var(&f.seed, "seed", 1, "seed picking the services that change")
	flag.BoolVar(&f.strict, "strict", false, "exit 1 when a target is missed")
	flag.BoolVar(&f.keep, "keep", false, "keep the work directory (logs) after the run")
	flag.BoolVar(&f.consulStreaming, "consul-streaming", false, "run Consul with use_streaming_backend = true (its default; off by default here for a Consul 1.14 bug, README \"Consul versions\") to compare the load the control plane's health queries put on Consul")
	flag.StringVar(&f.xdsServer, "xds-server", controlplane.XDSServerLean, "the control plane's --xds-server (its xDS transport): lean, its default, or grpc; a run with another than the default is named for it and left out of the README's block")
	flag.StringVar(&f.heapProfile, "heap-profile", "", "write the control plane's heap profile (its admin /debug/pprof/heap, after a GC) to this file once every client has synced, for `go tool pprof`")
	flag.StringVar(&f.cpuProfile, "cpu-profile", "", "write the control plane's CPU profile (its admin /debug/pprof/profile) of each scenario's first -cpu-profile-for to PREFIX-<scenario>.pprof, for `go tool pprof`")
	flag.DurationVar(&f.cpuProfileFor, "cpu-profile-for", 20*time.Second, "how long -cpu-profile profiles each scenario, from its start")
	scenario := flag.String("scenario", "all", "scenarios to run, in turn: all, or a comma-separated list of "+strings.Join(allScenarios, ", "))
	flag.StringVar(&f.results, "results", "bench/results/cp", "directory (relative to the module root) of the results file, <date>-<commit>.json; empty: none")
	readme := flag.String("render-readme", "", "render the newest full delta run of each scale in the -results directory into this Markdown file's "+readmeBegin+" block, and run nothing")
	flag.Parse()
	if *readme != "" {
		if err := renderReadme(f.results, *readme); err != nil {
			fmt.Fprintln(os.Stderr, "bench-cp:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	if f.scenarios, err = parseScenarios(*scenario); err != nil {
		fmt.Fprintln(os.Stderr, "bench-cp:", err)
		os.Exit(2)
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench-cp:", err)
		os.Exit(1)
	}
}

func run(f flags) error {
	if err := f.topo.validate(); err != nil {
		return err
	}
	if f.changes < 1 {
		return fmt.Errorf("-changes %d: want at least 1", f.changes)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weft-bench-cp")
	if err != nil {
		return err
	}
	if !f.keep {
		defer os.RemoveAll(dir)
	}
	fmt.Printf("work directory (logs): %s\n", dir)
	machine := results.ProbeMachine()
	bins, err := build(root, dir)
	if err != nil {
		return err
	}

	var started []*procs.Proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}()
	consul, client, consulAddr, err := startConsul(dir, filepath.Join(root, "bin/consul"), f.consulStreaming)
	if consul != nil {
		started = append(started, consul)
	}
	if err != nil {
		return err
	}
	began := time.Now()
	if err := register(client, f.topo); err != nil {
		return err
	}
	registered := time.Since(began)
	fmt.Printf("registered %d services × %d instances in Consul in %v\n", f.topo.services, f.topo.instances, registered.Round(time.Millisecond))

	xdsAddr, adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort()), fmt.Sprintf("127.0.0.1:%d", freePort())
	cp, err := procs.Start(procs.Spec{Dir: dir, Name: "control-plane", Args: []string{bins.weft, "control-plane", "--consul-addr", consulAddr,
		"--xds-addr", xdsAddr, "--admin-addr", adminAddr, "--ca-dir", filepath.Join(dir, "ca"),
		"--trace-store-traces", "0", "--log-level", "warn", "--xds-server", f.xdsServer}})
	if err != nil {
		return err
	}
	started = append(started, cp)
	if err := poll.Wait(2*time.Minute, "control plane ready", func() error { return httpOK("http://" + adminAddr + "/ready") }); err != nil {
		return fmt.Errorf("%w (log: %s)", err, cp.Log)
	}

	nodesFile := filepath.Join(dir, "nodes.txt")
	if err := os.WriteFile(nodesFile, []byte(strings.Join(f.topo.proxyIDs(), "\n")+"\n"), 0o644); err != nil {
		return err
	}
	lgOut, lgAddr := io.Pipe()
	lgp, err := procs.Start(procs.Spec{Dir: dir, Name: "loadgen", Stdout: lgAddr, Args: []string{bins.loadgen, "-xds-addr", xdsAddr, "-nodes", nodesFile, "-mode", f.mode}})
	if err != nil {
		return err
	}
	started = append(started, lgp)
	lg, err := loadgenFrom(lgOut)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, lgp.Log)
	}

	cpuStart, _ := cp.CPUSeconds()
	syncStart := time.Now()
	clients := len(f.topo.proxyIDs())
	err = poll.Wait(3*time.Minute, "every client synced", func() error {
		s, err := lg.status()
		if err == nil && s.Synced < clients {
			err = fmt.Errorf("%d of %d synced", s.Synced, clients)
		}
		return err
	})
	if err != nil {
		return err
	}
	rep := report{flags: f, registered: registered, syncTook: time.Since(syncStart), clients: clients}
	cpuSynced, _ := cp.CPUSeconds()
	rep.syncCPU = cpuSynced - cpuStart
	if rep.syncMem, err = cp.Memory(); err != nil {
		return err
	}
	if f.heapProfile != "" {
		if err := saveProfile("http://"+adminAddr+"/debug/pprof/heap?gc=1", f.heapProfile); err != nil {
			return err
		}
		fmt.Printf("heap profile of the synced control plane: %s\n", f.heapProfile)
		if err := saveProfile("http://"+adminAddr+"/debug/pprof/goroutine", f.heapProfile+".goroutines"); err != nil {
			return err
		}
		if m, err := memoryBreakdown("http://" + adminAddr + "/metrics"); err == nil {
			fmt.Printf("its memory by Go's accounting: %s\n", m)
		}
	}
	fmt.Printf("%d clients synced in %v; measuring idle CPU for %v\n", clients, rep.syncTook.Round(time.Millisecond), idleWindow)
	if rep.idleCPU, err = idleCPURate(cp); err != nil {
		return err
	}
	b := &bench{flags: f, consul: client, lg: lg, lgProc: lgp, cp: cp, agent: consul, adminAddr: adminAddr, clients: f.topo.proxyIDs()}
	for _, name := range f.scenarios {
		// Each scenario resets the peak RSS (VmHWM): keep the run's.
		if m, err := cp.Memory(); err == nil {
			rep.peakRSS = max(rep.peakRSS, m.HWM)
		}
		fmt.Printf("scenario %s\n", name)
		profiled := profileCPU(f, adminAddr, name)
		sr, err := b.runScenario(name)
		if err != nil {
			return err
		}
		if err := <-profiled; err != nil {
			return err
		}
		rep.scenarios = append(rep.scenarios, sr)
	}
	if rep.endMem, err = cp.Memory(); err != nil {
		return err
	}
	rep.peakRSS = max(rep.peakRSS, rep.endMem.HWM)
	if f.heapProfile != "" {
		// Goroutine stacks shrink by half per collection at most.
		for range 2 {
			if err := saveProfile("http://"+adminAddr+"/debug/pprof/heap?gc=1", f.heapProfile+".end"); err != nil {
				return err
			}
		}
		fmt.Printf("heap profile of the control plane after the scenarios: %s.end\n", f.heapProfile)
		if m, err := memoryBreakdown("http://" + adminAddr + "/metrics"); err == nil {
			fmt.Printf("its memory by Go's accounting then: %s\n", m)
		}
	}
	if s, err := lg.status(); err == nil {
		rep.streamErrors = s.StreamErrors
	}
	ok := rep.print(os.Stdout)
	if f.results != "" {
		res := rep.results(root, machine)
		dir := f.results
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		path, err := res.write(dir)
		if err != nil {
			return err
		}
		fmt.Printf("\nresults: %s\n", path)
	}
	if f.strict && !ok {
		return fmt.Errorf("a target was missed")
	}
	return nil
}

// loadgenFrom reads the load generator's "listening on" line.
func loadgenFrom(out io.Reader) (*loadgenAPI, error) {
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "loadgen listening on "); ok {
				lines <- addr
			}
		}
	}()
	select {
	case addr := <-lines:
		return &loadgenAPI{base: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}}, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("the load generator did not start")
	}
}

type binaries struct{ weft, loadgen string }

// build compiles the control plane and the load generator into dir, so the
// benchmark measures this checkout's code.
func build(root, dir string) (binaries, error) {
	b := binaries{weft: filepath.Join(dir, "weft"), loadgen: filepath.Join(dir, "loadgen")}
	for out, pkg := range map[string]string{b.weft: "./cmd/weft", b.loadgen: "./bench/cp/loadgen"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("go build %s: %w", pkg, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "bin/consul")); err != nil {
		return b, fmt.Errorf("bin/consul: %w (make consul builds it)", err)
	}
	return b, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// saveProfile writes the profile url serves to path.
// profileCPU saves the control plane's CPU profile of the next
// f.cpuProfileFor when f.cpuProfile is set; the channel yields the outcome.
func profileCPU(f flags, adminAddr, scenario string) <-chan error {
	done := make(chan error, 1)
	if f.cpuProfile == "" {
		done <- nil
		return done
	}
	path := fmt.Sprintf("%s-%s.pprof", f.cpuProfile, scenario)
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, int(f.cpuProfileFor.Seconds()))
	go func() {
		err := saveProfile(url, path)
		if err == nil {
			fmt.Printf("CPU profile of the control plane in scenario %s: %s\n", scenario, path)
		}
		done <- err
	}()
	return done
}

func saveProfile(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s: %s", url, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return fmt.Errorf("profile: %w", err)
	}
	return out.Close()
}

// memoryBreakdown reads the Go runtime's memory figures and goroutine
// count from a /metrics page, in MiB, to tell heap from stacks.
func memoryBreakdown(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	want := []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes",
		"go_memstats_stack_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes", "go_goroutines"}
	var parts []string
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !slices.Contains(want, name) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		if strings.HasSuffix(name, "_bytes") {
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", strings.TrimSuffix(strings.TrimPrefix(name, "go_memstats_"), "_bytes"), v/(1<<20)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimPrefix(name, "go_"), v))
		}
	}
	return strings.Join(parts, ", "), nil
}
