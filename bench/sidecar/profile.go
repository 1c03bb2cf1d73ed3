package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// profiles takes CPU profiles of Weft's sidecars during the saturation
// runs (-profile DIR): each sidecar runs with --admin-profiling, and its
// admin API's /debug/pprof/profile is read for the run's length. Profiling
// costs the sidecars a little CPU, so a profiled run's figures are not
// measurements.
type profiles struct {
	dir string
	mu  sync.Mutex
	// admin is each profiled sidecar's admin address.
	admin map[*procs.Proc]string
}

// add notes a sidecar started with --admin-profiling.
func (p *profiles) add(proc *procs.Proc, admin string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.admin == nil {
		p.admin = map[*procs.Proc]string{}
	}
	p.admin[proc] = admin
}

// start profiles every sidecar of ps for d, writing DIR/<name>-<proxy>.pprof;
// wait returns once every profile is written, with the first error.
func (p *profiles) start(name string, ps []*procs.Proc, d time.Duration) (wait func() error) {
	if p == nil || p.dir == "" {
		return func() error { return nil }
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ps))
	for _, proc := range ps {
		p.mu.Lock()
		admin, ok := p.admin[proc]
		p.mu.Unlock()
		if !ok {
			continue
		}
		out := filepath.Join(p.dir, name+"-"+proc.Name+".pprof")
		wg.Go(func() { errs <- fetchProfile(admin, out, d) })
	}
	return func() error {
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func fetchProfile(admin, out string, d time.Duration) error {
	secs := max(int(d/time.Second), 1)
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", admin, resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", admin, err)
	}
	return f.Close()
}
