package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/bench/internal/results"
)

// machine describes where the benchmark runs, with the load average now;
// the caller sets LoadEnd at the end.
func machine() results.Machine {
	m := results.Machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), Kernel: "?", LoadStart: loadAverage()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load average, in which other
// work on the machine shows.
func loadAverage() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	for i, f := range strings.Fields(string(b)) {
		if i == len(l) {
			break
		}
		l[i], _ = strconv.ParseFloat(f, 64)
	}
	return l
}

// toolVersions are the first line each tool prints about its version.
func toolVersions(b binaries) map[string]string {
	v := map[string]string{"go": runtime.Version()}
	for name, args := range map[string][]string{
		"consul": {b.consul, "version"}, "haproxy": {b.haproxy, "-v"}, "nginx": {b.nginx, "-v"}, "fortio": {b.fortio, "version"},
	} {
		out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		v[name] = line
	}
	return v
}

// commit is the module's HEAD, short, and whether tracked files differ
// from it.
func commit(root string) (string, bool) {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown", true
	}
	status, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(status))) > 0
}

// moduleRoot is the directory of go.mod at or above the working directory.
func moduleRoot() (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil || root == "/" {
			return root, nil
		}
		root = filepath.Dir(root)
	}
}
