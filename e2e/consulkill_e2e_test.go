package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// consulOutage is how long TestConsulKilledUnderTraffic keeps Consul
// down, as issue 14 asks.
const consulOutage = 30 * time.Second

// TestConsulKilledUnderTraffic (RELIABILITY #2, issue 14): Consul is
// stopped for 30 s while requests flow through web's sidecar, then
// restarted empty (a dev agent keeps its state in memory) and
// re-populated: config entries and registrations replayed, as agents
// and operators would. No request fails, and web's sidecar never has an
// endpoint set emptied: its /config_dump, polled throughout, always
// lists both api instances and the echo instance, at least one healthy.
// The control plane's resync grace is shortened to 15 s so that the test
// also sees Consul's answers apply as they are once it is over.
func TestConsulKilledUnderTraffic(t *testing.T) {
	m := startMesh(t, meshOptions{resyncGrace: "15s"})
	const web = "web-1-sidecar-proxy"
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 1, true, "api-1")
	c.waitServedBy(30*time.Second, 1, true, "api-2")
	m.waitEndpoints(t, web, 3)
	want := map[string]int{"api": 2, "echo": 1}
	watch := watchEndpoints(t, m, web, want)
	load := startSteadyLoad(t, m.apiPort, 2)

	m.consul.Stop()
	<-time.After(consulOutage) // the outage's length, not a synchronisation
	polled := watch.count()
	if polled < 10 {
		t.Errorf("web's /config_dump read %d times during the outage; want it polled throughout", polled)
	}
	m.consul.Restart()
	m.replayConsul(t)
	consultest.WaitForPassing(t, m.consul.Client(), "api", 2)
	consultest.WaitForPassing(t, m.consul.Client(), "echo", 1)
	poll.Until(t, 60*time.Second, "the control plane's resync over", func() error {
		return m.cpMetric("weft_cp_consul_held_services", 0)
	})
	c.waitServedBy(30*time.Second, 1, false, "api-1")
	c.waitServedBy(30*time.Second, 1, false, "api-2")

	if ok, failed := load.stop(); failed > 0 || ok < 500 {
		t.Errorf("steady load across the Consul outage: %d ok, %d failed; want 0 failed (and ≥ 500 sent)", ok, failed)
	}
	if errs := watch.stop(); len(errs) > 0 {
		t.Errorf("web's endpoints across the outage: %d bad reads, first: %v", len(errs), errs[0])
	}
}

// replayConsul writes what the mesh wrote to Consul again, into a Consul
// that restarted empty: config entries first, then each registration,
// passed once registered (see registerWithMeta).
func (m *mesh) replayConsul(t *testing.T) {
	t.Helper()
	client := m.consul.Client()
	for _, e := range m.entries {
		if _, _, err := client.ConfigEntries().Set(e, nil); err != nil {
			t.Fatalf("replay %s %s: %v", e.GetKind(), e.GetName(), err)
		}
	}
	for id, reg := range m.regs {
		if err := client.Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("replay %s: %v", id, err)
		}
		m.setHealth(t, id, true)
	}
}

// endpointWatch polls a sidecar's /config_dump and records every read
// where a service has fewer endpoints than wanted, or none healthy.
type endpointWatch struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	reads int
	errs  []error
}

func watchEndpoints(t *testing.T, m *mesh, proxyID string, want map[string]int) *endpointWatch {
	w := &endpointWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
			w.record(checkEndpoints(m, proxyID, want))
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// checkEndpoints reads proxyID's endpoints once.
func checkEndpoints(m *mesh, proxyID string, want map[string]int) error {
	eps, err := m.readEndpoints(proxyID)
	if err != nil {
		return err
	}
	for service, n := range want {
		if got := eps[service]; got.total < n || got.healthy == 0 {
			return fmt.Errorf("%s's %s endpoints: %d listed, %d healthy; want %d listed, some healthy", proxyID, service, got.total, got.healthy, n)
		}
	}
	return nil
}

func (w *endpointWatch) record(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	if err != nil {
		w.errs = append(w.errs, err)
	}
}

// count returns how many reads were made so far.
func (w *endpointWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads
}

// stop ends the polling and returns the bad reads; it may be called twice.
func (w *endpointWatch) stop() []error {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs
}
