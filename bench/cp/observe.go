package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// watchesMetric is the control plane's gauge of the Consul blocking
// queries it holds open (docs/observability.md).
const watchesMetric = "weft_cp_consul_watches"

// metricValue returns the value of an unlabelled sample of name in a
// Prometheus text exposition, and whether there is one.
func metricValue(exposition []byte, name string) (float64, bool) {
	s := bufio.NewScanner(bytes.NewReader(exposition))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		rest, ok := bytes.CutPrefix(s.Bytes(), []byte(name))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		f := bytes.Fields(rest)
		if v, err := strconv.ParseFloat(string(f[0]), 64); err == nil {
			return v, true
		}
	}
	return 0, false
}

// scrapeWatches reads the watches gauge from the admin address.
func scrapeWatches(client *http.Client, adminAddr string) (int, error) {
	resp, err := client.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	v, ok := metricValue(b, watchesMetric)
	if !ok {
		return 0, fmt.Errorf("/metrics has no %s", watchesMetric)
	}
	return int(v), nil
}

// Sampling intervals of a scenario's peaks.
const (
	rssSample     = 100 * time.Millisecond
	watchesSample = time.Second
)

// peaks are the highest figures a sampler saw.
type peaks struct {
	cpRSS, consulRSS       int64 // bytes
	watchesMin, watchesMax int
}

// sampler follows the control plane's and Consul's RSS and the control
// plane's open blocking queries while a scenario runs. The kernel's VmHWM
// (reset at the scenario's start) is the exact peak; the samples back it
// where the reset is not available.
type sampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	p      peaks
}

func startSampler(cp, agent *procs.Proc, adminAddr string) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{cancel: cancel, p: peaks{watchesMin: -1}}
	client := &http.Client{Timeout: 5 * time.Second}
	s.wg.Go(func() {
		rss, watches := time.NewTicker(rssSample), time.NewTicker(watchesSample)
		defer rss.Stop()
		defer watches.Stop()
		s.sampleWatches(client, adminAddr)
		for {
			select {
			case <-ctx.Done():
				return
			case <-rss.C:
				s.sampleRSS(cp, agent)
			case <-watches.C:
				s.sampleWatches(client, adminAddr)
			}
		}
	})
	return s
}

func (s *sampler) sampleRSS(cp, agent *procs.Proc) {
	c, err1 := cp.Memory()
	a, err2 := agent.Memory()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err1 == nil {
		s.p.cpRSS = max(s.p.cpRSS, c.RSS)
	}
	if err2 == nil {
		s.p.consulRSS = max(s.p.consulRSS, a.RSS)
	}
}

func (s *sampler) sampleWatches(client *http.Client, adminAddr string) {
	n, err := scrapeWatches(client, adminAddr)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p.watchesMin < 0 || n < s.p.watchesMin {
		s.p.watchesMin = n
	}
	s.p.watchesMax = max(s.p.watchesMax, n)
}

// stop ends the sampling and returns the peaks.
func (s *sampler) stop() peaks {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}
