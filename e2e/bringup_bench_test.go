package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// bringUpSidecars are the bring-up's sidecars, by proxy ID: web-1 calls api
// (api-1, api-2).
var bringUpSidecars = []string{"api-1-sidecar-proxy", "api-2-sidecar-proxy", "web-1-sidecar-proxy"}

// bringUpWithin bounds every phase of one bring-up.
const bringUpWithin = 2 * time.Minute

// BenchmarkBringUpUnderLoad starts a mesh from nothing — Consul, the
// control plane, three sidecars and their apps — with every core kept
// busy by a CPU-burning process, and measures the time from Consul's start
// to the first request served through web's sidecar to api (issue 14
// item 7). Each iteration is one bring-up, torn down before the next:
//
//	go test ./e2e -run '^$' -bench BringUpUnderLoad -benchtime 20x -v
//
// The control plane and the sidecars are started together once Consul is
// ready and the instances are registered, as a pod's containers would be:
// a sidecar's first connection to its control plane may well fail. It
// reports the distribution of the time to the first 200 (p50-s … max-s),
// the median of each phase and of the time from the control plane's
// readiness to the first 200 (cp-to-200-p50-s, the sidecars' part), and
// logs every run's phases (all of them only with -v), with how often and
// for how long at most the sidecars backed off. Run it against another
// build with $WEFT_TEST_BIN_DIR (internal/testproc).
func BenchmarkBringUpUnderLoad(b *testing.B) {
	var runs []bringUp
	for b.Loop() {
		r := bringUpOnce(b)
		b.Logf("run %d: %s", len(runs)+1, r)
		runs = append(runs, r)
	}
	reportBringUps(b, runs)
}

// bringUp is what one bring-up took, each phase timed from Consul's start.
type bringUp struct {
	consul       time.Duration            // consultest.Start returned: a leader, the node in the catalog
	controlPlane time.Duration            // its /ready answers 200
	sidecars     map[string]time.Duration // each sidecar's /ready answers 200, by proxy ID
	apiPassing   time.Duration            // Consul passes an api sidecar instance
	firstOK      time.Duration            // web's sidecar serves api's answer
	xdsRetries   int                      // xDS connection retries in the sidecars' logs
	leafRetries  int                      // leaf certificate retries in the sidecars' logs
	longestRetry time.Duration            // the longest wait before one of them
}

func (r bringUp) String() string {
	var sidecars []string
	for _, id := range bringUpSidecars {
		sidecars = append(sidecars, fmt.Sprintf("%s %s", strings.TrimSuffix(id, "-sidecar-proxy"), seconds(r.sidecars[id])))
	}
	return fmt.Sprintf("consul %s, control plane %s, sidecars ready [%s], api passing %s, first 200 %s; sidecar retries: xDS %d, leaf %d (longest wait %s)",
		seconds(r.consul), seconds(r.controlPlane), strings.Join(sidecars, ", "), seconds(r.apiPassing), seconds(r.firstOK),
		r.xdsRetries, r.leafRetries, seconds(r.longestRetry))
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// lastSidecar is when the last of the sidecars was ready.
func (r bringUp) lastSidecar() time.Duration {
	var last time.Duration
	for _, d := range r.sidecars {
		last = max(last, d)
	}
	return last
}

// bringUpOnce brings a mesh up from nothing under CPU load, times it and
// tears it all down.
func bringUpOnce(b *testing.B) bringUp {
	it := &iterationTB{TB: b}
	defer it.close()
	burnCPUs(it)

	start := time.Now()
	m := bareMesh(it, meshOptions{})
	r := bringUp{consul: time.Since(start), sidecars: map[string]time.Duration{}}
	m.setEntry(it, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	for _, id := range []string{"api-1", "api-2"} {
		m.hits[id] = &atomic.Int64{}
		m.register(it, id, "api", startNameServer(it, id, m.hits[id]), nil)
	}
	m.register(it, "web-1", "web", freePort(it), []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort},
	})
	m.launchControlPlane(it)
	for _, id := range bringUpSidecars {
		m.launchProxy(it, id)
	}
	m.timePhases(b, start, &r)
	sidecarRetries(b, m, &r)
	return r
}

// timePhases waits for every phase of the bring-up at once, each on its
// own goroutine, and records when each held.
func (m *mesh) timePhases(b *testing.B, start time.Time, r *bringUp) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	phase := func(what string, into func(time.Duration), cond func() error) {
		wg.Go(func() {
			err := poll.Wait(bringUpWithin, what, cond)
			at := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			into(at)
		})
	}
	phase("control plane ready", func(d time.Duration) { r.controlPlane = d }, get200("http://"+m.cpAdmin+"/ready"))
	for _, id := range bringUpSidecars {
		phase(id+" ready", func(d time.Duration) { r.sidecars[id] = d }, get200("http://"+m.proxyAdmin[id]+"/ready"))
	}
	phase("an api instance passing in Consul", func(d time.Duration) { r.apiPassing = d }, func() error {
		entries, _, err := m.consul.Client().Health().Connect("api", "", true, nil)
		if err == nil && len(entries) == 0 {
			err = errors.New("none passing")
		}
		return err
	})
	phase("first request through web's sidecar", func(d time.Duration) { r.firstOK = d }, get200("http://"+addr(m.apiPort)+"/"))
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("bring-up: %v (so far: %s)", errors.Join(errs...), r)
	}
}

// get200 is a condition that holds when a GET of url answers 200.
func get200(url string) func() error {
	client := &http.Client{}
	return func() error {
		code, body, err := httpGet(context.Background(), client, url)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	}
}

// retryLine matches a sidecar's log line announcing an xDS or leaf retry
// (proxy/xds, proxy/identity) and captures which and the wait before it.
var retryLine = regexp.MustCompile(`(xDS stream ended|leaf certificate renewal failed); retrying.* retry_in=(\S+)`)

// sidecarRetries counts the xDS and leaf retries in the sidecars' logs
// into r, with the longest wait announced.
func sidecarRetries(b *testing.B, m *mesh, r *bringUp) {
	for _, id := range bringUpSidecars {
		log, err := os.ReadFile(m.proxies[id].LogPath())
		if err != nil {
			b.Fatal(err)
		}
		for _, match := range retryLine.FindAllSubmatch(log, -1) {
			d, err := time.ParseDuration(string(match[2]))
			if err != nil {
				b.Fatalf("%s log: retry_in=%s: %v", id, match[2], err)
			}
			if string(match[1]) == "xDS stream ended" {
				r.xdsRetries++
			} else {
				r.leafRetries++
			}
			r.longestRetry = max(r.longestRetry, d)
		}
	}
}

// reportBringUps reports the distribution of the time to the first 200
// and the median of each phase.
func reportBringUps(b *testing.B, runs []bringUp) {
	if len(runs) == 0 {
		return
	}
	firstOK := phaseTimes(runs, func(r bringUp) time.Duration { return r.firstOK })
	for _, q := range []struct {
		unit string
		q    float64
	}{{"p50-s", 0.50}, {"p90-s", 0.90}, {"p99-s", 0.99}, {"max-s", 1}} {
		b.ReportMetric(quantile(firstOK, q.q).Seconds(), q.unit)
	}
	for unit, of := range map[string]func(bringUp) time.Duration{
		"consul-p50-s":    func(r bringUp) time.Duration { return r.consul },
		"cp-p50-s":        func(r bringUp) time.Duration { return r.controlPlane },
		"sidecars-p50-s":  bringUp.lastSidecar,
		"passing-p50-s":   func(r bringUp) time.Duration { return r.apiPassing },
		"cp-to-200-p50-s": func(r bringUp) time.Duration { return r.firstOK - r.controlPlane },
	} {
		b.ReportMetric(quantile(phaseTimes(runs, of), 0.5).Seconds(), unit)
	}
}

// phaseTimes returns one phase's time in every run, sorted.
func phaseTimes(runs []bringUp, of func(bringUp) time.Duration) []time.Duration {
	d := make([]time.Duration, len(runs))
	for i, r := range runs {
		d[i] = of(r)
	}
	slices.Sort(d)
	return d
}

// quantile is the q-quantile of sorted by nearest rank: the smallest value
// at least a q share of the values are no greater than (q = 1: the
// maximum).
func quantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// burnCPUEnv, set in a child's environment, makes this test binary burn
// one core until it is killed instead of running tests.
const burnCPUEnv = "WEFT_E2E_BURN_CPU"

// burnCPU spins on one core (the child's GOMAXPROCS is 1) forever.
func burnCPU() {
	for {
	}
}

// burnCPUs starts one CPU-burning process per core, at normal priority,
// for the rest of the iteration.
func burnCPUs(t testing.TB) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for i := range runtime.NumCPU() {
		testproc.Run(t, testproc.Spec{Name: "cpu-burner-" + strconv.Itoa(i), Args: []string{self},
			Env: []string{burnCPUEnv + "=1", "GOMAXPROCS=1"}})
	}
}

// iterationTB is a benchmark's testing.TB for one iteration: what is
// registered with its Cleanup runs when the iteration ends (close), not
// when the benchmark does, so that iterations do not pile up processes.
type iterationTB struct {
	testing.TB
	cleanups []func()
}

func (it *iterationTB) Cleanup(f func()) { it.cleanups = append(it.cleanups, f) }

// close runs the cleanups, the latest registered first, as testing does.
func (it *iterationTB) close() {
	for _, f := range slices.Backward(it.cleanups) {
		f()
	}
}
