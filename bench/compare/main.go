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
)

func main() {
	qps := flag.Int("qps", 1000, "requests per second of the fixed-rate load")
	conns := flag.Int("c", 16, "concurrent connections")
	dur := flag.Duration("t", 10*time.Second, "load duration per scenario")
	strict := flag.Bool("strict", false, "exit 1 when a Weft target is missed")
	flag.Parse()
	if err := run(*qps, *conns, *dur, *strict); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(qps, conns int, dur time.Duration, strict bool) error {
	bins, err := findBinaries()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weft-bench")
	if err != nil {
		return err
	}
	fmt.Printf("logs and fortio results in %s\n", dir)
	e := &env{dir: dir, bin: bins}
	var all []*proc
	defer func() {
		for i := len(all) - 1; i >= 0; i-- {
			all[i].stop()
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
	var rows []row
	for _, s := range scenarios {
		url, ps, err := s.setup(e)
		all = append(all, ps...)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := waitOK(url, 90*time.Second); err != nil {
			return fmt.Errorf("%s: not serving: %w (logs in %s)", s.name, err, dir)
		}
		r := row{name: s.name, procs: len(ps), rss: rssOf(ps)}
		before := cpuOf(ps)
		start := time.Now()
		if r.load, err = runLoad(bins.fortio, dir, slug(s.name), url, qps, conns, dur); err != nil {
			return err
		}
		r.cpu = (cpuOf(ps) - before) / time.Since(start).Seconds()
		rows = append(rows, r)
	}
	ok := report(os.Stdout, rows, qps)
	if strict && !ok {
		return fmt.Errorf("a Weft target was missed")
	}
	return nil
}

// startMesh runs a Consul dev agent and Weft's control plane.
func startMesh(e *env) ([]*proc, error) {
	httpPort := freePort()
	e.consulA = fmt.Sprintf("127.0.0.1:%d", httpPort)
	c, err := start(e.dir, "consul", e.bin.consul, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", fmt.Sprint(httpPort), "-dns-port", "-1", "-grpc-port", "-1",
		"-serf-lan-port", fmt.Sprint(freePort()), "-serf-wan-port", fmt.Sprint(freePort()), "-server-port", fmt.Sprint(freePort()))
	if err != nil {
		return nil, err
	}
	cfg := api.DefaultConfig()
	cfg.Address = e.consulA
	if e.consul, err = api.NewClient(cfg); err != nil {
		return []*proc{c}, err
	}
	if err := waitOK("http://"+e.consulA+"/v1/status/leader", 30*time.Second); err != nil {
		return []*proc{c}, fmt.Errorf("consul: %w", err)
	}
	e.xdsAddr = fmt.Sprintf("127.0.0.1:%d", freePort())
	admin := fmt.Sprintf("127.0.0.1:%d", freePort())
	cp, err := start(e.dir, "control-plane", e.bin.weft, "control-plane", "--consul-addr", e.consulA,
		"--xds-addr", e.xdsAddr, "--admin-addr", admin, "--ca-dir", filepath.Join(e.dir, "ca"),
		"--trace-store-traces", "0", "--log-level", "warn")
	if err != nil {
		return []*proc{c}, err
	}
	return []*proc{c, cp}, waitOK("http://"+admin+"/ready", 30*time.Second)
}

// waitOK polls url until it answers 200.
func waitOK(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(200 * time.Millisecond) // polling interval, not synchronisation
	}
	return fmt.Errorf("no 200 within %v: %v", within, last)
}

func findBinaries() (binaries, error) {
	root, err := os.Getwd()
	if err != nil {
		return binaries{}, err
	}
	for _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil && root != "/"; _, err = os.Stat(filepath.Join(root, "go.mod")) {
		root = filepath.Dir(root)
	}
	b := binaries{consul: filepath.Join(root, "bin/consul"), weft: filepath.Join(root, "bin/weft"), proxy: filepath.Join(root, "bin/weft-proxy")}
	var missing []string
	for _, p := range []string{b.consul, b.weft, b.proxy} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p+" (make build consul)")
		}
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
	return b, nil
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}
