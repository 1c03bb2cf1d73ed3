package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestPeeringFailover: dc1's service-resolver for api fails over to api
// of peer dc2 (Failover Targets with Peer). While web calls api without
// pause, dc1's only api instance turns critical — as Consul marks an
// instance that stopped — and web's calls move to dc2's api, through
// dc2's mesh gateway, within 5 s; it passes again and they move back
// within 5 s. No call fails.
func TestPeeringFailover(t *testing.T) {
	dc1, dc2 := peeredMeshes(t)

	for _, m := range []*mesh{dc1, dc2} {
		m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	}
	dc2.hits["api-dc2"] = &atomic.Int64{}
	dc2.exportWithGateway(t, "api", "api-dc2", startNameServer(t, "api-dc2", dc2.hits["api-dc2"]), "mesh-gateway-dc2", "dc1")

	dc1.hits["api-dc1"] = &atomic.Int64{}
	dc1.register(t, "api-dc1", "api", startNameServer(t, "api-dc1", dc1.hits["api-dc1"]), nil)
	dc1.startProxy(t, "api-dc1-sidecar-proxy")
	dc1.setEntry(t, &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "api", Failover: map[string]api.ServiceResolverFailover{
		"*": {Targets: []api.ServiceResolverFailoverTarget{{Peer: "dc2"}}},
	}})
	dc1.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: dc1.apiPort},
	})
	dc1.startProxy(t, "web-1-sidecar-proxy")
	consultest.WaitForPassing(t, dc1.consul.Client(), "api", 1)

	c := newCaller(t, dc1.apiPort)
	poll.UntilStreak(t, 60*time.Second, "web reaches dc1's api five times in a row", 5, func() error {
		if who, err := c.call(); err != nil || who != "api-dc1" {
			return fmt.Errorf("call: %q, %v", who, err)
		}
		return nil
	})

	rec := recordCalls(c)
	moved := func(what string, healthy bool, want string) {
		t.Helper()
		start := time.Now()
		dc1.setHealth(t, "api-dc1", healthy)
		poll.Until(t, 30*time.Second, what, func() error {
			if got := rec.lastN(10); got[want] != 10 {
				return fmt.Errorf("the last 10 calls were answered by %v", got)
			}
			return nil
		})
		took := rec.firstSince(start, want).Sub(start)
		t.Logf("%s: %v after the health change", what, took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("%s took %v, want within 5 s", what, took)
		}
	}
	moved("calls move to dc2's api", false, "api-dc2")
	moved("calls move back to dc1's api", true, "api-dc1")
	ok, failed := rec.stop()
	if len(failed) > 0 {
		t.Fatalf("%d of %d calls failed across failover and back; first: %v", len(failed), ok+len(failed), failed[0])
	}
	if dc2.hits["api-dc2"].Load() == 0 {
		t.Fatalf("dc2's api was never reached")
	}
	t.Logf("%d calls, none failed", ok)
}

// callRecorder calls without pause until stopped, keeping who answered
// each call and when.
type callRecorder struct {
	stopc chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	calls  []recordedCall
	failed []error
}

type recordedCall struct {
	at  time.Time
	who string
}

func recordCalls(c *caller) *callRecorder {
	r := &callRecorder{stopc: make(chan struct{})}
	r.wg.Go(func() {
		for {
			select {
			case <-r.stopc:
				return
			default:
			}
			who, err := c.call()
			r.mu.Lock()
			if err != nil {
				r.failed = append(r.failed, err)
			} else {
				r.calls = append(r.calls, recordedCall{time.Now(), who})
			}
			r.mu.Unlock()
		}
	})
	return r
}

// lastN counts who answered the latest n calls (fewer before n calls).
func (r *callRecorder) lastN(n int) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, c := range r.calls[max(0, len(r.calls)-n):] {
		out[c.who]++
	}
	return out
}

// firstSince is when who first answered at or after start.
func (r *callRecorder) firstSince(start time.Time, who string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if !c.at.Before(start) && c.who == who {
			return c.at
		}
	}
	return time.Time{}
}

func (r *callRecorder) stop() (ok int, failed []error) {
	close(r.stopc)
	r.wg.Wait()
	return len(r.calls), r.failed
}
