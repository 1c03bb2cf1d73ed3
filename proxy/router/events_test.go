package router

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/retry"
	"github.com/weft-mesh/weft/proxy/route"
)

// seen is an Event as a test compares it: the host by instance.
type seen struct {
	Kind               EventKind
	Attempt            int
	Instance           string
	Status, GRPCStatus int
	Failure            localreply.Reason
	Timeout            string
	Ejected            int
}

// observer records the events of the requests it sees, per request.
type observer struct {
	mu     sync.Mutex
	events map[context.Context][]seen
	order  []context.Context
}

func (o *observer) observe(ctx context.Context, e Event) {
	s := seen{Kind: e.Kind, Attempt: e.Attempt, Status: e.Status, GRPCStatus: e.GRPCStatus, Failure: e.Failure, Timeout: e.Timeout, Ejected: e.Ejected}
	if e.Host != nil {
		s.Instance = e.Host.InstanceID()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.events[ctx]; !ok {
		o.order = append(o.order, ctx)
	}
	o.events[ctx] = append(o.events[ctx], s)
}

// last returns the events of the latest request seen.
func (o *observer) last() []seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.order) == 0 {
		return nil
	}
	return o.events[o.order[len(o.order)-1]]
}

// observed is an env whose router reports its events to an observer.
func observed(t *testing.T) (*env, *observer) {
	e := newEnv(t)
	o := &observer{events: map[context.Context][]seen{}}
	e.router = New(e.clusters, Hooks{Observe: o.observe}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return e, o
}

// instances is a static cluster whose endpoints name their instances.
func instances(name string, addrByInstance ...string) *config.Cluster {
	c := staticCluster(name)
	for i := 0; i < len(addrByInstance); i += 2 {
		c.Endpoints = append(c.Endpoints, config.Endpoint{Address: addrByInstance[i+1], InstanceID: addrByInstance[i], Healthy: true, Weight: 1})
	}
	return c
}

// TestObserveRetries: every attempt is reported with its host's instance
// and outcome, a retry included.
func TestObserveRetries(t *testing.T) {
	e, o := observed(t)
	var bad atomic.Int32
	e.setClusters(instances("c", "bad-1", status(t, 503, &bad), "good-1", named(t, "good")))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 2, HostSelectionAttempts: 1})))
	want := []seen{
		{Kind: AttemptEnded, Attempt: 1, Instance: "bad-1", Status: 503, GRPCStatus: -1},
		{Kind: AttemptEnded, Attempt: 2, Instance: "good-1", Status: 200, GRPCStatus: -1},
	}
	for range 10 { // round robin: some first attempt goes to the bad host
		if got := e.get("/"); got.code != 200 {
			t.Fatalf("got %d %q", got.code, got.body)
		}
		if len(o.last()) == 2 {
			if diff := cmp.Diff(want, o.last()); diff != "" {
				t.Errorf("events of a retried request (-want +got):\n%s", diff)
			}
			return
		}
		once := []seen{{Kind: AttemptEnded, Attempt: 1, Instance: "good-1", Status: 200, GRPCStatus: -1}}
		if diff := cmp.Diff(once, o.last()); diff != "" {
			t.Errorf("events of a request served at once (-want +got):\n%s", diff)
		}
	}
	t.Fatal("no request was retried")
}

// TestObserveTimeouts: a per-try timeout ends an attempt (upstream_timeout)
// and is reported as such, per attempt.
func TestObserveTimeouts(t *testing.T) {
	e, o := observed(t)
	e.setClusters(instances("c", "hole-1", testnet.BlackHole(t)))
	e.routes(to("c", withRetry(&retry.Policy{On: retry.On5xx, NumRetries: 1, PerTryTimeout: 50 * time.Millisecond})))
	wantLocalReply(t, e.get("/"), 504, "upstream_timeout", "c")
	want := []seen{
		{Kind: AttemptEnded, Attempt: 1, Instance: "hole-1", GRPCStatus: -1, Failure: localreply.UpstreamTimeout},
		{Kind: TimedOut, Attempt: 1, Timeout: PerTryTimeout},
		{Kind: AttemptEnded, Attempt: 2, Instance: "hole-1", GRPCStatus: -1, Failure: localreply.UpstreamTimeout},
		{Kind: TimedOut, Attempt: 2, Timeout: PerTryTimeout},
	}
	if diff := cmp.Diff(want, o.last()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// The route timeout, without retries.
	e.routes(to("c", func(r *route.Route) { r.Action.Timeout = 50 * time.Millisecond }))
	wantLocalReply(t, e.get("/"), 504, "upstream_timeout", "c")
	want = []seen{
		{Kind: AttemptEnded, Attempt: 1, Instance: "hole-1", GRPCStatus: -1, Failure: localreply.UpstreamTimeout},
		{Kind: TimedOut, Attempt: 1, Timeout: RouteTimeout},
	}
	if diff := cmp.Diff(want, o.last()); diff != "" {
		t.Errorf("events of the route timeout (-want +got):\n%s", diff)
	}
}

// TestObserveEjections: the failure that opens a host's breaker says so,
// and later requests hear that outlier detection holds a host out.
func TestObserveEjections(t *testing.T) {
	e, o := observed(t)
	var n atomic.Int32
	c := instances("c", "broken-1", status(t, 500, &n), "up-1", named(t, "up"))
	s := outlier.Defaults()
	s.Consecutive5xx, s.MaxEjectionPercent = 1, 100
	c.Outlier = &s
	e.setClusters(c)
	e.routes(to("c"))
	for n.Load() == 0 {
		e.get("/")
	}
	want := []seen{
		{Kind: AttemptEnded, Attempt: 1, Instance: "broken-1", Status: 500, GRPCStatus: -1},
		{Kind: BreakerOpened, Attempt: 1, Instance: "broken-1"},
	}
	if diff := cmp.Diff(want, o.last()); diff != "" {
		t.Errorf("events of the ejecting request (-want +got):\n%s", diff)
	}
	if got := e.get("/"); got.body != "up" {
		t.Fatalf("after the ejection: %d %q", got.code, got.body)
	}
	want = []seen{
		{Kind: HostsEjected, Attempt: 1, Instance: "up-1", Ejected: 1},
		{Kind: AttemptEnded, Attempt: 1, Instance: "up-1", Status: 200, GRPCStatus: -1},
	}
	if diff := cmp.Diff(want, o.last()); diff != "" {
		t.Errorf("events of a request after the ejection (-want +got):\n%s", diff)
	}
}
