package cluster

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// aggregateOf is an aggregate cluster "agg" over children "primary" and
// "peer" with the given endpoints, and the manager holding them.
func aggregateOf(t *testing.T, threshold float64, primary, peer []config.Endpoint) (*Manager, *Cluster) {
	t.Helper()
	m := NewManager(Options{})
	t.Cleanup(m.Close)
	m.Update(aggregateConfigs(threshold, primary, peer))
	return m, m.Get("agg")
}

func aggregateConfigs(threshold float64, primary, peer []config.Endpoint) map[string]*config.Cluster {
	lb := config.LB{PanicThreshold: threshold}
	return map[string]*config.Cluster{
		"agg":     {Name: "agg", Aggregate: []string{"primary", "peer"}, LB: lb},
		"primary": {Name: "primary", Endpoints: primary, LB: lb},
		"peer":    {Name: "peer", Endpoints: peer, LB: lb},
	}
}

// byCluster picks n times from c and counts picks by the host's cluster.
func byCluster(t *testing.T, c *Cluster, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		att, err := c.Pick(balancer.PickInfo{}, nil, 0)
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		att.Release()
		got[att.Cluster.Name()]++
	}
	return got
}

// TestAggregateSharesByHealth: as Envoy's aggregate load balancer, the
// children take requests by their health (available share × 1.4, at most
// 100 %), in order, normalized when they fall short of 100 % together;
// with no available host anywhere, by the hosts of their panic pickers.
func TestAggregateSharesByHealth(t *testing.T) {
	tests := []struct {
		name          string
		threshold     float64
		primary, peer []config.Endpoint
		shares        []int // primary, peer
		active        string
		panic         bool
		wantErr       error // of Pick, when no child takes requests
	}{
		{name: "primary healthy: all on it", threshold: 50, primary: hosts("a", 0, "++"), peer: hosts("b", 0, "++"),
			shares: []int{100, 0}, active: "primary"},
		{name: "3 of 4 healthy is whole (×1.4)", threshold: 50, primary: hosts("a", 0, "+++-"), peer: hosts("b", 0, "+"),
			shares: []int{100, 0}, active: "primary"},
		{name: "half healthy: 70 % stay, the peer takes the rest", threshold: 50, primary: hosts("a", 0, "++--"), peer: hosts("b", 0, "+"),
			shares: []int{70, 30}, active: "primary"},
		{name: "primary unhealthy: all on the peer", threshold: 50, primary: hosts("a", 0, "--"), peer: hosts("b", 0, "+"),
			shares: []int{0, 100}, active: "peer"},
		{name: "primary without endpoints", threshold: 50, peer: hosts("b", 0, "+"),
			shares: []int{0, 100}, active: "peer"},
		{name: "a whole failover priority within the primary", threshold: 50, primary: append(hosts("a", 0, "--"), hosts("f", 1, "+")...), peer: hosts("b", 0, "+"),
			shares: []int{100, 0}, active: "primary"},
		{name: "together short of 100 %: normalized", threshold: 50, primary: hosts("a", 0, "+---"), peer: hosts("b", 0, "+---"),
			shares: []int{50, 50}, active: "primary"},
		{name: "none available: total panic by hosts", threshold: 50, primary: hosts("a", 0, "---"), peer: hosts("b", 0, "-"),
			shares: []int{75, 25}, active: "primary", panic: true},
		{name: "none available, panic mode off", threshold: 0, primary: hosts("a", 0, "--"), peer: hosts("b", 0, "-"),
			shares: []int{0, 0}, wantErr: ErrNoHealthyUpstream},
		{name: "no endpoints at all", threshold: 50,
			shares: []int{0, 0}, wantErr: ErrNoHealthyUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, agg := aggregateOf(t, tt.threshold, tt.primary, tt.peer)
			want := Info{Name: "agg", Hosts: []HostInfo{}, Panic: tt.panic, Aggregate: &AggregateInfo{Active: tt.active,
				Children: []ChildInfo{{Name: "primary", Share: tt.shares[0]}, {Name: "peer", Share: tt.shares[1]}}}}
			if diff := cmp.Diff(want, agg.info()); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil {
				if _, err := agg.Pick(balancer.PickInfo{}, nil, 0); !errors.Is(err, tt.wantErr) {
					t.Errorf("Pick err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			const n = 2000
			got := byCluster(t, agg, n)
			for i, name := range []string{"primary", "peer"} {
				share, want := 100*got[name]/n, tt.shares[i]
				if want%100 == 0 && share != want || share < want-5 || share > want+5 {
					t.Errorf("%s took %d %% of %d picks, want %d %% (all: %v)", name, share, n, want, got)
				}
			}
		})
	}
}

// TestAggregateSeesItsChildren: an update of a child — its endpoints'
// health, a new configuration, an outlier ejection — moves the next
// requests, without touching the aggregate's configuration.
func TestAggregateSeesItsChildren(t *testing.T) {
	m, agg := aggregateOf(t, 50, hosts("a", 0, "+"), hosts("b", 0, "+"))
	cfgs := aggregateConfigs(50, hosts("a", 0, "+"), hosts("b", 0, "+"))
	update := func(primary []config.Endpoint, od *outlier.Settings) {
		next := *cfgs["primary"]
		next.Endpoints, next.Outlier = primary, od
		cfgs["primary"] = &next
		m.Update(cfgs)
	}
	steps := []struct {
		name string
		do   func()
		want map[string]int
	}{
		{"healthy primary", func() {}, map[string]int{"primary": 20}},
		{"primary unhealthy in EDS", func() { update(hosts("a", 0, "-"), nil) }, map[string]int{"peer": 20}},
		{"primary healthy again", func() { update(hosts("a", 0, "+"), nil) }, map[string]int{"primary": 20}},
		{"primary's endpoints removed", func() { update(nil, nil) }, map[string]int{"peer": 20}},
		{"primary back, with outlier detection", func() {
			update(hosts("a", 0, "+"), &outlier.Settings{Consecutive5xx: 1, Enforcing5xx: 100, BaseEjectionTime: time.Hour, MaxEjectionPercent: 100})
		}, map[string]int{"primary": 20}},
		{"primary's host ejected", func() { eject(t, m.Get("primary"), "a1:1") }, map[string]int{"peer": 20}},
	}
	for _, step := range steps {
		step.do()
		if diff := cmp.Diff(step.want, byCluster(t, agg, 20)); diff != "" {
			t.Errorf("%s: picks (-want +got):\n%s", step.name, diff)
		}
	}
	if m.Get("agg") != agg {
		t.Error("the aggregate cluster was replaced by updates of its child")
	}
}

// TestAggregateRetryMovesToTheNextChild: a retry that must avoid the
// primary's only host goes to the peer, although the primary still
// takes every new request; with no other child, it falls back to the
// host tried, as a cluster does.
func TestAggregateRetryMovesToTheNextChild(t *testing.T) {
	_, agg := aggregateOf(t, 50, hosts("a", 0, "+"), hosts("b", 0, "+"))
	first, err := agg.Pick(balancer.PickInfo{}, nil, 0)
	if err != nil || first.Cluster.Name() != "primary" {
		t.Fatalf("first pick: %v in %v, want the primary's host", err, first.Cluster)
	}
	first.Release()
	retry, err := agg.Pick(balancer.PickInfo{Attempt: 1}, []*Host{first.Host}, 1)
	if err != nil || retry.Cluster.Name() != "peer" || retry.Host.Address() != "b1:1" {
		t.Fatalf("retry: %v, %+v, want the peer's host", err, retry)
	}
	retry.Release()

	_, alone := aggregateOf(t, 50, hosts("a", 0, "+"), nil)
	first, _ = alone.Pick(balancer.PickInfo{}, nil, 0)
	first.Release()
	again, err := alone.Pick(balancer.PickInfo{Attempt: 1}, []*Host{first.Host}, 1)
	if err != nil || again.Host != first.Host {
		t.Errorf("retry without another child: %v, %+v; want the host tried again", err, again)
	}
	again.Release()
}

// TestAggregateAttemptTakesTheChildsSettings: the attempt names the
// child, whose TLS, limits and retry budget apply; the aggregate has no
// transport of its own to speak of.
func TestAggregateAttemptTakesTheChildsSettings(t *testing.T) {
	tlsm := newMesh(t)
	m := NewManager(Options{Credentials: tlsm.creds})
	t.Cleanup(m.Close)
	addr := tlsm.server(t, pkitest.ID("api"))
	peer := tlsCluster(addr, pkitest.ID("api"), "http/1.1")
	peer.Name, peer.Limits = "peer", config.DefaultLimits()
	peer.Limits.MaxRequests = 1
	m.Update(map[string]*config.Cluster{
		"agg":     {Name: "agg", Aggregate: []string{"primary", "peer"}, LB: config.LB{PanicThreshold: 50}},
		"primary": {Name: "primary", Endpoints: hosts("a", 0, "-"), LB: config.LB{PanicThreshold: 0}},
		"peer":    peer,
	})
	att, err := m.Get("agg").Pick(balancer.PickInfo{}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer att.Release()
	if att.Cluster != m.Get("peer") || att.Cluster.Scheme() != "https" {
		t.Fatalf("attempt in %v (scheme %s), want the peer's mTLS cluster", att.Cluster, att.Cluster.Scheme())
	}
	if got, err := roundTrip(t, att.Cluster, att.Host.Address()); err != nil || !strings.HasPrefix(got, "HTTP/1.1 ") {
		t.Errorf("round trip over the child's transport: %q, %v", got, err)
	}
	if !att.Cluster.AcquireRequest() || att.Cluster.AcquireRequest() {
		t.Error("the child's max_requests of 1 does not apply")
	}
}

// TestAggregatePickNeitherLocksNorAllocates: with every cluster's update
// lock held, Pick still picks; and it allocates nothing.
func TestAggregatePickNeitherLocksNorAllocates(t *testing.T) {
	m, agg := aggregateOf(t, 50, hosts("a", 0, "+-"), hosts("b", 0, "+"))
	for _, name := range []string{"agg", "primary", "peer"} {
		mu := &m.Get(name).mu
		mu.Lock()
		defer mu.Unlock()
	}
	done := make(chan error, 1)
	go func() {
		att, err := agg.Pick(balancer.PickInfo{}, nil, 0)
		if err == nil {
			att.Release()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pick blocked on a cluster's lock")
	}
	tried := []*Host{m.Get("primary").state.Load().hosts[0].host}
	if n := testing.AllocsPerRun(200, func() {
		att, err := agg.Pick(balancer.PickInfo{Attempt: 1}, tried, 1)
		if err == nil {
			att.Release()
		}
	}); n != 0 {
		t.Errorf("Pick allocates %.1f times, want 0", n)
	}
}

// TestManagerReplacesAClusterThatChangesKind: a cluster that becomes an
// aggregate, or stops being one, is a new cluster; the series of the
// plain cluster replaced by an aggregate go (OnClusterRemoved), and a
// plain cluster replacing an aggregate keeps its own.
func TestManagerReplacesAClusterThatChangesKind(t *testing.T) {
	var removed []string
	var mu sync.Mutex
	m := NewManager(Options{OnClusterRemoved: func(name string) { mu.Lock(); removed = append(removed, name); mu.Unlock() }})
	t.Cleanup(m.Close)
	plain := map[string]*config.Cluster{
		"api":  {Name: "api", Endpoints: hosts("a", 0, "+")},
		"peer": {Name: "peer", Endpoints: hosts("b", 0, "+")},
	}
	m.Update(plain)
	before := m.Get("api")
	m.Update(map[string]*config.Cluster{
		"api":       {Name: "api", Aggregate: []string{"api-local", "peer"}, LB: config.LB{PanicThreshold: 50}},
		"api-local": {Name: "api-local", Endpoints: hosts("a", 0, "+")},
		"peer":      plain["peer"],
	})
	agg := m.Get("api")
	if agg == before || !agg.IsAggregate() {
		t.Fatal("api was not replaced by an aggregate cluster")
	}
	if diff := cmp.Diff(map[string]int{"api-local": 5}, byCluster(t, agg, 5)); diff != "" {
		t.Errorf("picks of the new aggregate (-want +got):\n%s", diff)
	}
	m.Update(plain)
	if m.Get("api") == agg || m.Get("api").IsAggregate() {
		t.Error("api was not replaced by a plain cluster again")
	}
	if diff := cmp.Diff([]string{"api", "api-local"}, removed); diff != "" {
		t.Errorf("OnClusterRemoved (-want +got):\n%s", diff)
	}
}
