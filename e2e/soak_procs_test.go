package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

// soakProc is a Weft process the soak watches: the control plane or a
// sidecar, across its restarts.
type soakProc struct {
	name  string
	pid   func() int // of its latest start
	admin string     // serves /metrics
}

func (s *soakMesh) soakProcs() []soakProc {
	procs := []soakProc{{name: "control-plane", pid: s.controlPlane.Pid, admin: s.cpAdmin}}
	for _, id := range slices.Sorted(maps.Keys(s.proxies)) {
		procs = append(procs, soakProc{name: id, pid: s.proxies[id].Pid, admin: s.proxyAdmin[id]})
	}
	return procs
}

// procSample is one reading of a process's memory and goroutines.
type procSample struct {
	proc       string
	at         time.Duration // from the load's start
	pid        int
	rss        rss
	heapGoalMB float64
	goroutines int
}

// rss is a process's resident memory: all of it (VmRSS), and its
// anonymous part (RssAnon), the heap and stacks, without the file pages
// of the executable, which weft-proxy gives back after starting
// (internal/memtrim) and faults in again as code paths first run.
type rss struct{ total, anon float64 } // MB

// readRSS reads a process's resident memory from /proc.
func readRSS(pid int) (rss, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}, err
	}
	defer f.Close()
	var got rss
	fields := map[string]*float64{"VmRSS:": &got.total, "RssAnon:": &got.anon}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for prefix, into := range fields {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if err != nil {
					return rss{}, fmt.Errorf("/proc/%d/status %s %w", pid, prefix, err)
				}
				*into = kb / 1024
			}
		}
	}
	if got.total == 0 {
		return rss{}, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return got, sc.Err()
}

func goroutines(p soakProc) (int, error) {
	v, err := scrapeMetric(p.admin, "go_goroutines")
	return int(v), err
}

func readProc(p soakProc, at time.Duration) (procSample, error) {
	pid := p.pid()
	mem, err := readRSS(pid)
	if err != nil {
		return procSample{}, err
	}
	g, err := goroutines(p)
	if err != nil {
		return procSample{}, err
	}
	// The Go runtime's heap goal is twice the heap live after the last
	// collection (GOGC=100): where the live heap goes, apart from what
	// the runtime keeps from the OS.
	goal, err := scrapeMetric(p.admin, "go_memstats_next_gc_bytes")
	if err != nil {
		return procSample{}, err
	}
	return procSample{proc: p.name, at: at, pid: pid, rss: mem, heapGoalMB: goal / (1 << 20), goroutines: g}, nil
}

// sampler reads every process at a fixed interval; a process down at that
// moment (being restarted) is skipped.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	got   []procSample
}

func startSampler(procs []soakProc, since time.Time, every time.Duration) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			s.readAll(procs, time.Since(since))
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) readAll(procs []soakProc, at time.Duration) {
	for _, p := range procs {
		if ps, err := readProc(p, at); err == nil {
			s.mu.Lock()
			s.got = append(s.got, ps)
			s.mu.Unlock()
		}
	}
}

func (s *sampler) stop() []procSample {
	close(s.stopc)
	<-s.done
	return s.got
}

// goroutineCounts reads every process's goroutines.
func goroutineCounts(t *testing.T, procs []soakProc) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range procs {
		g, err := goroutines(p)
		if err != nil {
			t.Fatalf("%s goroutines: %v", p.name, err)
		}
		out[p.name] = g
	}
	return out
}

// goroutineSlack is how far above its baseline a process may settle
// after the load: timers, a background write, a pooled connection.
func goroutineSlack(baseline int) int { return max(10, baseline/5) }

// waitGoroutinesBack waits until every process is back within the slack
// of its baseline; it returns the counts last read, and an error naming
// a process that did not come back.
func waitGoroutinesBack(t *testing.T, procs []soakProc, baseline map[string]int) (map[string]int, error) {
	t.Helper()
	var got map[string]int
	// A sidecar closes pooled upstream connections after 60 s idle
	// (proxy/cluster's default), and with them the goroutines serving
	// them on both ends: counts can settle only after that.
	err := poll.Wait(2*time.Minute, "goroutines back to baseline", func() error {
		got = goroutineCounts(t, procs)
		for name, n := range got {
			if n > baseline[name]+goroutineSlack(baseline[name]) {
				return fmt.Errorf("%s has %d goroutines, baseline %d", name, n, baseline[name])
			}
		}
		return nil
	})
	return got, err
}

// keepLogs copies every Weft process's log into dir when the test ends
// (before the processes are stopped), for looking into a failed soak.
func (s *soakMesh) keepLogs(t *testing.T, dir string) {
	t.Cleanup(func() {
		keep := func(name, path string) {
			if b, err := os.ReadFile(path); err == nil {
				os.WriteFile(filepath.Join(dir, name+".log"), b, 0o644)
			}
		}
		keep("control-plane", s.controlPlane.LogPath())
		for id, p := range s.proxies {
			keep(id, p.LogPath())
		}
	})
}
