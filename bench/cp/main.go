// Command cp is Weft's control-plane scale benchmark (make bench-cp). It
// runs a Consul dev agent with a catalog of 1,000 services × 2 sidecar
// instances, the control plane (bin/weft control-plane, built fresh) and,
// in a separate process, a load generator holding one ADS stream per
// sidecar (bench/cp/loadgen). Once every stream has ACKed every type, it
// makes a series of Consul changes and measures, for each, the time from
// the Consul write to the last ACK of every affected client, then prints
// convergence percentiles, the control plane's memory and CPU, and the
// bytes pushed per change, and checks the targets.
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
	"strings"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/internal/poll"
)

type flags struct {
	topo    topology
	changes int
	mode    string
	seed    uint64
	strict  bool
	keep    bool
}

func main() {
	var f flags
	flag.IntVar(&f.topo.services, "services", 1000, "services in the catalog")
	flag.IntVar(&f.topo.instances, "instances", 2, "sidecar instances per service; one xDS client each")
	flag.IntVar(&f.topo.upstreams, "upstreams", 3, "upstream services per sidecar")
	flag.IntVar(&f.topo.nodes, "nodes", 50, "Consul nodes the instances are spread over")
	flag.IntVar(&f.changes, "changes", 40, "Consul changes to measure")
	flag.StringVar(&f.mode, "mode", "delta", "ADS variant of the simulated clients: delta or sotw")
	flag.Uint64Var(&f.seed, "seed", 1, "seed picking the services that change")
	flag.BoolVar(&f.strict, "strict", false, "exit 1 when a target is missed")
	flag.BoolVar(&f.keep, "keep", false, "keep the work directory (logs) after the run")
	flag.Parse()
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
	consul, client, consulAddr, err := startConsul(dir, filepath.Join(root, "bin/consul"))
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
		"--trace-store-traces", "0", "--log-level", "warn"}})
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
	fmt.Printf("%d clients synced in %v; measuring idle CPU for %v\n", clients, rep.syncTook.Round(time.Millisecond), idleWindow)
	if rep.idleCPU, err = idleCPURate(cp); err != nil {
		return err
	}
	fmt.Printf("measuring %d changes\n", f.changes)

	changesStart := time.Now()
	cpuChanges, _ := cp.CPUSeconds()
	for i, ch := range planChanges(f.topo, f.changes, f.seed) {
		r, err := measure(client, lg, ch)
		if err != nil {
			return err
		}
		if cp.Exited() {
			return fmt.Errorf("the control plane exited (log: %s)", cp.Log)
		}
		fmt.Printf("  %2d  %-32s %3d affected  converged %6.1f ms  %7d bytes  %d unaffected clients pushed\n",
			i+1, ch.what, len(ch.affected), float64(r.converged.Microseconds())/1000, r.bytes, r.unaffected)
		rep.results = append(rep.results, r)
	}
	cpuEnd, _ := cp.CPUSeconds()
	rep.changeCPU, rep.changeWall = cpuEnd-cpuChanges, time.Since(changesStart)
	if rep.endMem, err = cp.Memory(); err != nil {
		return err
	}
	if s, err := lg.status(); err == nil {
		rep.streamErrors = s.StreamErrors
	}
	ok := rep.print(os.Stdout)
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
