package discovery

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// fakeConsul serves the few Consul HTTP endpoints the Watcher reads, with
// Consul's blocking-query semantics on one global index. Tests change its
// data, inject failures and move its index, which real Consul makes hard.
type fakeConsul struct {
	client *api.Client

	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed and replaced on every change
	data    fakeData
	failing map[string]bool // URL paths answered with 500
}

// fakeData is what fakeConsul serves.
type fakeData struct {
	datacenter      string
	leader          string
	names           []string                       // /v1/catalog/services
	connect         map[string][]*api.ServiceEntry // /v1/health/connect/<name>
	serviceDefaults []map[string]any               // /v1/config/service-defaults
	proxyDefaults   []map[string]any               // /v1/config/proxy-defaults
}

func startFakeConsul(t *testing.T, data fakeData) *fakeConsul {
	t.Helper()
	f := &fakeConsul{index: 10, changed: make(chan struct{}), data: data, failing: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "http://")
	cfg.Scheme = "http"
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	return f
}

// update changes the data under a new, higher index and wakes blocked
// queries.
func (f *fakeConsul) update(change func(d *fakeData)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.data)
	f.index++
	f.wake()
}

// restart replaces the data and moves the index back, as a Consul that
// lost its state does.
func (f *fakeConsul) restart(change func(d *fakeData)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.data)
	f.index = 2
	f.wake()
}

// fail makes requests to path fail (or succeed again), including blocked
// ones.
func (f *fakeConsul) fail(path string, failing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing[path] = failing
	f.wake()
}

func (f *fakeConsul) wake() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	minIndex, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timeout := time.NewTimer(wait)
	defer timeout.Stop()

	f.mu.Lock()
	for minIndex > 0 && f.index <= minIndex && !f.failing[r.URL.Path] {
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			minIndex = 0
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	failing, index := f.failing[r.URL.Path], f.index
	body, ok := f.body(r.URL.Path)
	f.mu.Unlock()

	switch {
	case failing:
		http.Error(w, "injected failure", http.StatusInternalServerError)
	case !ok:
		http.NotFound(w, r)
	default:
		w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}
}

// body is the answer to path; f.mu must be held.
func (f *fakeConsul) body(path string) (any, bool) {
	d := f.data
	switch path {
	case "/v1/agent/self":
		return map[string]any{"Config": map[string]any{"Datacenter": d.datacenter}}, true
	case "/v1/status/leader":
		return d.leader, true
	case "/v1/catalog/services":
		names := map[string][]string{}
		for _, n := range d.names {
			names[n] = []string{}
		}
		return names, true
	case "/v1/config/service-defaults":
		return orEmpty(d.serviceDefaults), true
	case "/v1/config/proxy-defaults":
		return orEmpty(d.proxyDefaults), true
	case "/v1/config/mesh", "/v1/config/service-intentions", "/v1/config/service-resolver", "/v1/config/service-splitter", "/v1/config/service-router",
		"/v1/config/exported-services":
		return []map[string]any{}, true
	}
	if name, ok := strings.CutPrefix(path, "/v1/health/connect/"); ok {
		if entries := d.connect[name]; entries != nil {
			return entries, true
		}
		return []*api.ServiceEntry{}, true
	}
	return nil, false
}

func orEmpty(list []map[string]any) []map[string]any {
	if list == nil {
		return []map[string]any{}
	}
	return list
}
