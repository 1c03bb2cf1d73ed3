// Command sidecar is the measurement of `make bench`: Weft's sidecar pair
// against no proxy (direct), an HAProxy pair and Consul's built-in proxy
// pair, on loopback, under four workloads (HTTP/1.1 keep-alive, HTTP/1.1
// with a new connection per request, gRPC unary, TCP streaming). For every
// workload and peer it measures saturation throughput; p50, p90, p99 and
// p99.9 at a fixed rate; CPU seconds per 1,000 units of each proxy
// process; RSS idle and under load; and, per peer, the time from starting
// a client-side proxy to its first request served. Rounds alternate
// between the scenarios and figures are medians over them. It judges
// Weft's targets and writes bench/results/<date>-<commit>.json, which
// bench/report renders into the README.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weft-mesh/weft/bench/internal/results"
)

// options are the load every scenario gets, and what to run.
type options struct {
	rate, conns, streamConns, rounds int
	dur, idle                        time.Duration
	quick                            bool
	workloads, peers                 string
	proxyEnv                         []string
	out, profile                     string
	strict                           bool
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 1000, "fixed rate (units per second) latency, CPU and memory under load are measured at")
	flag.IntVar(&o.conns, "c", 16, "connections of the load, fixed-rate and saturation runs alike")
	flag.IntVar(&o.streamConns, "stream-c", 4, "connections of the TCP streaming saturation run")
	flag.DurationVar(&o.dur, "t", 10*time.Second, "length of each run: per scenario and round, one fixed-rate run and one saturation run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; the scenarios take turns in each, and figures are medians over them")
	flag.DurationVar(&o.idle, "idle", 35*time.Second, "how long the proxies sit idle, once serving, before their idle memory is read (weft-proxy releases its executable's pages after 15-30 s without traffic)")
	flag.BoolVar(&o.quick, "quick", false, "smoke run, to check the harness: -t 2s -rounds 1 -idle 2s unless given; its figures are not measurements")
	flag.StringVar(&o.workloads, "workloads", "", "comma-separated workloads to run (default all): "+strings.Join(workloadIDs(), ", "))
	flag.StringVar(&o.peers, "peers", "", "comma-separated peers to run (default all): "+strings.Join(peerIDs, ", "))
	proxyEnv := flag.String("proxy-env", "", "extra environment of the Weft sidecars, comma-separated KEY=VALUE (e.g. GOGC=200), to compare runtime settings; printed with the peers' settings")
	flag.StringVar(&o.out, "out", "bench/results", "directory the results file is written to; a relative one is under the module root")
	flag.StringVar(&o.profile, "profile", "", "directory to write CPU profiles of the Weft sidecars to, one per fixed-rate and saturation run (sidecars then run with --admin-profiling, which the peers' settings list; the figures of a profiled run are not measurements)")
	flag.BoolVar(&o.strict, "strict", false, "exit 1 when a Weft target is missed")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["t"] {
			o.dur = 2 * time.Second
		}
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["idle"] {
			o.idle = 2 * time.Second
		}
	}
	o.rounds = max(o.rounds, 1)
	if *proxyEnv != "" {
		o.proxyEnv = strings.Split(*proxyEnv, ",")
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	ws, err := selectWorkloads(o.workloads)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weft-bench")
	if err != nil {
		return err
	}
	fmt.Printf("logs and fortio results in %s\n", dir)
	res := &results.Results{Date: time.Now().UTC(), Machine: results.ProbeMachine()}
	res.Commit, res.Dirty = results.Commit(root)
	bins, err := findBinaries(root, dir)
	if err != nil {
		return err
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
	}
	e := &env{dir: dir, bin: bins, proxyEnv: o.proxyEnv, profiles: &profiles{dir: o.profile}}
	defer e.stopAll()
	peers, err := selectPeers(e, o.peers)
	if err != nil {
		return err
	}
	res.Settings = results.Settings{Quick: o.quick, Rounds: o.rounds, RunSeconds: o.dur.Seconds(), IdleSeconds: o.idle.Seconds(),
		Rate: o.rate, Conns: o.conns, StreamConns: o.streamConns, Tools: toolVersions(bins)}
	for _, p := range peers {
		res.Peers = append(res.Peers, p.describe())
	}
	printSettings(res)

	b := &bench{o: o, e: e, l: load{fortio: bins.fortio, dir: dir, conns: o.conns, d: o.dur}}
	if err := b.deploy(peers, ws); err != nil {
		return err
	}
	if err := b.measure(ws); err != nil {
		return err
	}
	res.Machine.LoadEnd = results.LoadAverage()
	b.fill(res)
	res.Round() // the figures as the file holds them, which the ratios and targets are judged on
	results.ComputeRatios(res)
	res.Targets = results.Judge(res)
	res.Round()

	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	path, err := res.Write(out)
	if err != nil {
		return err
	}
	fmt.Printf("\nmachine: %s\nWeft targets:\n", res.Machine)
	missed := false
	for _, t := range res.Targets {
		fmt.Println("  " + t.String())
		missed = missed || !t.Pass
	}
	fmt.Printf("results: %s (go run ./bench/report renders it into the README)\n", path)
	if o.quick {
		fmt.Println("quick smoke run: its figures are not measurements")
	}
	if o.strict && missed {
		return fmt.Errorf("a Weft target was missed")
	}
	return nil
}

// peerIDs are the peers in the order they run in each round.
var peerIDs = []string{results.PeerDirect, results.PeerHAProxy, results.PeerConsul, results.PeerWeft, results.PeerWeftTrace100}

// selectPeers returns the peers listed in the comma-separated ids, every
// one when ids is empty, in the order of peerIDs.
func selectPeers(e *env, ids string) ([]peer, error) {
	all := []peer{
		direct{e},
		&haproxyPair{e: e},
		&consulPair{e: e},
		&weftPair{e: e, id: results.PeerWeft, tcp: true},
		// Tracing costs nothing in TCP proxying, so this pair runs only
		// the HTTP and gRPC workloads.
		&weftPair{e: e, id: results.PeerWeftTrace100, cpFlags: []string{"--trace-sampling", "100"}},
	}
	if ids == "" {
		return all, nil
	}
	want := strings.Split(ids, ",")
	for _, id := range want {
		if !slices.Contains(peerIDs, id) {
			return nil, fmt.Errorf("-peers: no peer %q (%s)", id, strings.Join(peerIDs, ", "))
		}
	}
	var out []peer
	for _, p := range all {
		if slices.Contains(want, p.describe().ID) {
			out = append(out, p)
		}
	}
	return out, nil
}

func printSettings(r *results.Results) {
	m := r.Machine
	fmt.Printf("machine: %s, %d cores, Linux %s, load average %.2f %.2f %.2f\n", m.CPU, m.Cores, m.Kernel, m.LoadStart[0], m.LoadStart[1], m.LoadStart[2])
	s := r.Settings
	fmt.Printf("load: %d round(s); per scenario and round, %s at %d/s and %s at saturation over %d connections (TCP streaming: %d); memory read after %s idle\n",
		s.Rounds, time.Duration(s.RunSeconds*float64(time.Second)), s.Rate, time.Duration(s.RunSeconds*float64(time.Second)), s.Conns, s.StreamConns,
		time.Duration(s.IdleSeconds*float64(time.Second)))
	fmt.Println("settings that differ from the defaults:")
	for _, p := range r.Peers {
		settings := "none"
		if len(p.NonDefault) > 0 {
			settings = strings.Join(p.NonDefault, "; ")
		}
		fmt.Printf("  %s: %s\n", p.Name, settings)
	}
}

// findBinaries builds weft and weft-proxy into dir as releases are built
// (see buildRelease) and finds Consul in bin/ and the other tools on the
// PATH.
func findBinaries(root, dir string) (binaries, error) {
	b := binaries{consul: filepath.Join(root, "bin/consul"), weft: filepath.Join(dir, "weft"), proxy: filepath.Join(dir, "weft-proxy")}
	var missing []string
	if _, err := os.Stat(b.consul); err != nil {
		missing = append(missing, b.consul+" (make consul)")
	}
	look := func(name string, extra ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, p := range extra {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	home, _ := os.UserHomeDir()
	b.nginx = look("nginx", "/usr/sbin/nginx")
	b.haproxy = look("haproxy", "/usr/sbin/haproxy")
	b.fortio = look("fortio", filepath.Join(home, "go/bin/fortio"))
	if len(missing) > 0 {
		return b, fmt.Errorf("missing: %s (make bench-deps installs them)", strings.Join(missing, ", "))
	}
	for out, pkg := range map[string]string{b.weft: "./cmd/weft", b.proxy: "./cmd/weft-proxy"} {
		if err := buildRelease(root, out, pkg); err != nil {
			return b, err
		}
	}
	return b, nil
}

// buildRelease builds pkg into out as `make build` and the Dockerfile
// build releases: static (CGO_ENABLED=0), without build paths or the
// symbol table and DWARF.
func buildRelease(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
