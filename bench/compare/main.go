// Command compare is Weft's side-by-side benchmark: the same fixed-rate
// HTTP load through Weft's sidecar pair, an HAProxy pair with TLS between
// its hops, and Consul's built-in proxy pair, against an nginx backend, on
// loopback. It prints latency, CPU per 1,000 rps and idle RSS, and checks
// Weft's targets. Run it with `make bench-compare`.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/internal/poll"
)

func main() {
	qps := flag.Int("qps", 1000, "requests per second of the fixed-rate load")
	conns := flag.Int("c", 16, "concurrent connections")
	dur := flag.Duration("t", 10*time.Second, "load duration per scenario and round")
	rounds := flag.Int("rounds", 3, "rounds of load; the scenarios take turns in each")
	idle := flag.Duration("idle", 35*time.Second, "how long each scenario's proxies sit idle, once serving, before their memory is read (weft-proxy releases its executable's pages after 15-30 s without traffic)")
	sampling := flag.Float64("trace-sampling", 100, "the control plane's --trace-sampling: percent of requests without a trace context that start a trace, exported to its embedded trace backend")
	proxyEnv := flag.String("proxy-env", "", "extra environment of the Weft sidecars, comma-separated KEY=VALUE (e.g. GOGC=200), to compare runtime settings")
	strict := flag.Bool("strict", false, "exit 1 when a Weft target is missed")
	flag.Parse()
	o := options{qps: *qps, conns: *conns, rounds: max(*rounds, 1), dur: *dur, idle: *idle, sampling: *sampling}
	if *proxyEnv != "" {
		o.proxyEnv = strings.Split(*proxyEnv, ",")
	}
	if err := run(o, *strict); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the load and the settings every scenario runs with.
type options struct {
	qps, conns, rounds int
	dur, idle          time.Duration
	sampling           float64
	proxyEnv           []string
}

func run(o options, strict bool) error {
	dir, err := os.MkdirTemp("", "weft-bench")
	if err != nil {
		return err
	}
	fmt.Printf("logs and fortio results in %s\n", dir)
	bins, err := findBinaries(dir)
	if err != nil {
		return err
	}
	e := &env{dir: dir, bin: bins, sampling: o.sampling, proxyEnv: o.proxyEnv}
	var all []*procs.Proc
	defer func() {
		for i := len(all) - 1; i >= 0; i-- {
			all[i].Stop()
		}
	}()
	nginx, err := startNginx(e)
	if err != nil {
		return err
	}
	all = append(all, nginx)
	infra, err := startMesh(e)
	all = append(all, infra...)
	if err != nil {
		return err
	}

	scenarios := []struct {
		name  string
		setup setup
	}{
		{"direct to nginx (baseline)", direct},
		{"HAProxy pair, TLS between", haproxyPair},
		{"Consul built-in proxy pair (L4, mTLS)", consulPair},
		{"Weft sidecar pair (L7, mTLS)", weftPair},
	}
	// Every scenario is started and measured idle first; then the loads
	// run in rounds, the scenarios taking turns, so that other work on
	// the machine falls on all of them alike. p50 and p99 are the
	// medians over the rounds; CPU is over all of them.
	type running struct {
		url  string
		ps   []*procs.Proc
		cpu  float64
		secs float64
	}
	rows := make([]row, len(scenarios))
	runs := make([]running, len(scenarios))
	for i, s := range scenarios {
		url, ps, err := s.setup(e)
		all = append(all, ps...)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := waitOK(url, 90*time.Second); err != nil {
			return fmt.Errorf("%s: not serving: %w (logs in %s)", s.name, err, dir)
		}
		runs[i] = running{url: url, ps: ps}
		rows[i] = row{name: s.name, procs: len(ps)}
	}
	time.Sleep(o.idle) // the idle interval being measured, not synchronisation
	for i := range rows {
		rows[i].idle = memoryOfAll(runs[i].ps)
	}
	loads := make([][]loadResult, len(scenarios))
	for round := range o.rounds {
		for i, s := range scenarios {
			before := cpuOf(runs[i].ps)
			start := time.Now()
			res, err := runLoad(bins.fortio, dir, fmt.Sprintf("%s-%d", slug(s.name), round+1), runs[i].url, o.qps, o.conns, o.dur)
			if err != nil {
				return err
			}
			runs[i].cpu += cpuOf(runs[i].ps) - before
			runs[i].secs += time.Since(start).Seconds()
			loads[i] = append(loads[i], res)
		}
	}
	for i := range rows {
		rows[i].load = medianLoad(loads[i])
		rows[i].cpu = runs[i].cpu / runs[i].secs
		rows[i].loaded = memoryOfAll(runs[i].ps)
	}
	fmt.Printf("\n%s; load: fortio, %d qps fixed rate, %d connections, %d rounds of %s per scenario (medians of p50 and p99); memory after %s idle; Weft trace sampling %g%%, sidecar environment %q\n",
		machine(), o.qps, o.conns, o.rounds, o.dur, o.idle, o.sampling, o.proxyEnv)
	ok := report(os.Stdout, rows, o.qps)
	if strict && !ok {
		return fmt.Errorf("a Weft target was missed")
	}
	return nil
}

// startMesh runs a Consul dev agent and Weft's control plane.
func startMesh(e *env) ([]*procs.Proc, error) {
	httpPort := freePort()
	e.consulA = fmt.Sprintf("127.0.0.1:%d", httpPort)
	c, err := procs.Start(procs.Spec{Dir: e.dir, Name: "consul", Args: []string{e.bin.consul, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", fmt.Sprint(httpPort), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", fmt.Sprint(freePort()), "-serf-wan-port", fmt.Sprint(freePort()), "-server-port", fmt.Sprint(freePort()),
		"-hcl", "use_streaming_backend = false"}}) // a Consul 1.14 panic: README, "Consul versions"
	if err != nil {
		return nil, err
	}
	cfg := api.DefaultConfig()
	cfg.Address = e.consulA
	if e.consul, err = api.NewClient(cfg); err != nil {
		return []*procs.Proc{c}, err
	}
	if err := waitOK("http://"+e.consulA+"/v1/status/leader", 30*time.Second); err != nil {
		return []*procs.Proc{c}, fmt.Errorf("consul: %w", err)
	}
	e.xdsAddr = fmt.Sprintf("127.0.0.1:%d", freePort())
	admin := fmt.Sprintf("127.0.0.1:%d", freePort())
	cp, err := procs.Start(procs.Spec{Dir: e.dir, Name: "control-plane", Args: []string{e.bin.weft, "control-plane", "--consul-addr", e.consulA,
		"--xds-addr", e.xdsAddr, "--admin-addr", admin, "--ca-dir", filepath.Join(e.dir, "ca"),
		"--trace-sampling", fmt.Sprint(e.sampling), "--log-level", "warn"}})
	if err != nil {
		return []*procs.Proc{c}, err
	}
	return []*procs.Proc{c, cp}, waitOK("http://"+admin+"/ready", 30*time.Second)
}

// waitOK polls url until it answers 200.
func waitOK(url string, within time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll.Wait(within, "200 from "+url, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
}

// findBinaries builds weft and weft-proxy into dir as releases are built
// (see buildRelease) and finds Consul in bin/ and the other tools on the
// PATH.
func findBinaries(dir string) (binaries, error) {
	root, err := os.Getwd()
	if err != nil {
		return binaries{}, err
	}
	for _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil && root != "/"; _, err = os.Stat(filepath.Join(root, "go.mod")) {
		root = filepath.Dir(root)
	}
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

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}
