package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
)

func withLimits(l config.Limits, eps ...string) *config.Cluster {
	c := &config.Cluster{Name: "c", ConnectTimeout: time.Second, Limits: l}
	for _, a := range eps {
		c.Endpoints = append(c.Endpoints, config.Endpoint{Address: a, Healthy: true, Weight: 1})
	}
	return c
}

func TestMaxRequests(t *testing.T) {
	l := config.DefaultLimits()
	l.MaxRequests = 2
	c := newCluster(withLimits(l), Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
	for i := range 2 {
		if !c.AcquireRequest() {
			t.Fatalf("request %d refused", i+1)
		}
	}
	if c.AcquireRequest() {
		t.Fatal("third request admitted over max_requests 2")
	}
	c.ReleaseRequest()
	if !c.AcquireRequest() {
		t.Error("request refused after one finished")
	}
}

func TestRetryLimits(t *testing.T) {
	tests := []struct {
		name     string
		limits   config.Limits
		requests int
		want     int // retries admitted
	}{
		{"max_retries", config.Limits{MaxRequests: 1024, MaxRetries: 2}, 10, 2},
		{"budget floor", config.Limits{MaxRequests: 1024, RetryBudget: &config.RetryBudget{Percent: 20, MinConcurrency: 3}}, 5, 3},
		{"budget share", config.Limits{MaxRequests: 1024, RetryBudget: &config.RetryBudget{Percent: 20, MinConcurrency: 3}}, 100, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(withLimits(tt.limits), Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
			for range tt.requests {
				c.AcquireRequest()
			}
			got := 0
			for c.CanRetry() {
				c.StartRetry()
				got++
			}
			if got != tt.want {
				t.Errorf("admitted %d retries, want %d", got, tt.want)
			}
		})
	}
}

func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestMaxConnectionsTCP(t *testing.T) {
	addr := listen(t)
	l := config.DefaultLimits()
	l.MaxConnections = 1
	c := newCluster(withLimits(l, addr), Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
	first, err := c.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dial(context.Background(), addr); !errors.Is(err, ErrOverflow) {
		t.Fatalf("second connection: %v, want ErrOverflow", err)
	}
	first.Close()
	second, err := c.Dial(context.Background(), addr)
	if err != nil {
		t.Fatalf("after closing the first: %v", err)
	}
	second.Close()
}

func TestHTTPWaitsForAConnectionAsPending(t *testing.T) {
	addr := listen(t)
	l := config.DefaultLimits()
	l.MaxConnections, l.MaxPendingRequests = 1, 1
	c := newCluster(withLimits(l, addr), Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
	st := c.state.Load()
	held, err := c.dialLimited(context.Background(), st, addr, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	waiting := make(chan error, 1)
	wg.Go(func() {
		conn, err := c.dialLimited(context.Background(), st, addr, true)
		if err == nil {
			conn.Close()
		}
		waiting <- err
	})
	// Wait until the second dial is pending, then overflow the queue.
	poll.UntilTrue(t, 10*time.Second, "the second dial pending", func() bool { return c.pending.Load() == 1 })
	if _, err := c.dialLimited(context.Background(), st, addr, true); !errors.Is(err, ErrOverflow) {
		t.Errorf("third dial: %v, want ErrOverflow (max_pending_requests 1)", err)
	}
	held.Close()
	if err := <-waiting; err != nil {
		t.Errorf("pending dial after a connection closed: %v", err)
	}
	wg.Wait()
}

func TestEjectionRebuildsThePicker(t *testing.T) {
	clock := &manualClock{now: time.Unix(0, 0)}
	cfg := withLimits(config.DefaultLimits(), "a:1", "b:1")
	cfg.Endpoints = append(cfg.Endpoints, config.Endpoint{Address: "backup:1", Healthy: true, Weight: 1, Priority: 1})
	s := outlier.Defaults()
	s.Consecutive5xx, s.MaxEjectionPercent, s.BaseEjectionTime = 1, 100, time.Minute
	cfg.Outlier = &s
	c := newCluster(cfg, Options{Credentials: mtls.Credentials{}, Clock: clock})
	fail := func(addr string) {
		for {
			att, err := c.Pick(balancer.PickInfo{}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if att.Host.Address() == addr {
				att.Report(outlier.Failure)
				att.Release()
				return
			}
			att.Release()
		}
	}
	fail("a:1")
	if got := picks(t, c, 10); got["b:1"] != 10 {
		t.Fatalf("after ejecting a: %v, want all on b", got)
	}
	fail("b:1")
	if got := picks(t, c, 10); got["backup:1"] != 10 {
		t.Fatalf("after ejecting both primaries: %v, want all on the backup", got)
	}
	clock.advance(time.Minute)
	if got := picks(t, c, 40); got["a:1"] == 0 || got["b:1"] == 0 {
		t.Errorf("after the ejection time: %v, want the primaries back", got)
	}
}

func TestCircuitOpen(t *testing.T) {
	cfg := withLimits(config.DefaultLimits(), "a:1")
	s := outlier.Defaults()
	s.Consecutive5xx, s.MaxEjectionPercent = 1, 100
	cfg.Outlier = &s
	c := newCluster(cfg, Options{Credentials: mtls.Credentials{}, Clock: &manualClock{}})
	att, _ := c.Pick(balancer.PickInfo{}, nil, 0)
	att.Report(outlier.GatewayFailure)
	att.Release()
	if _, err := c.Pick(balancer.PickInfo{}, nil, 0); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("Pick = %v, want ErrCircuitOpen", err)
	}
}

func TestPickAvoidsTriedHosts(t *testing.T) {
	c := newCluster(withLimits(config.DefaultLimits(), "a:1", "b:1", "c:1"), Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
	first, _ := c.Pick(balancer.PickInfo{}, nil, 0)
	first.Release()
	for range 30 {
		att, err := c.Pick(balancer.PickInfo{Attempt: 1}, []*Host{first.Host}, 2)
		if err != nil {
			t.Fatal(err)
		}
		att.Release()
		if att.Host == first.Host {
			t.Fatalf("retry picked %s again", att.Host.Address())
		}
	}
	only := newCluster(withLimits(config.DefaultLimits(), "a:1"), Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
	a, _ := only.Pick(balancer.PickInfo{}, nil, 0)
	if again, err := only.Pick(balancer.PickInfo{}, []*Host{a.Host}, 2); err != nil || again.Host != a.Host {
		t.Errorf("single host retry = %v, %v; want the same host", again.Host, err)
	}
}

func TestHostsKeptAcrossUpdates(t *testing.T) {
	m := NewManager(Options{})
	cfg := withLimits(config.DefaultLimits(), "a:1")
	m.Update(map[string]*config.Cluster{"c": cfg})
	c := m.Get("c")
	att, _ := c.Pick(balancer.PickInfo{}, nil, 0) // in flight across the update
	next := withLimits(config.DefaultLimits(), "a:1", "b:1")
	next.LB = config.LB{Policy: config.LeastRequest}
	m.Update(map[string]*config.Cluster{"c": next})
	hosts := c.state.Load().hosts
	if hosts[0].host != att.Host || hosts[0].host.active.Load() != 1 {
		t.Fatalf("host a:1 replaced or its in-flight count lost across the update")
	}
	att.Release()
	if hosts[0].host.active.Load() != 0 {
		t.Error("release after the update did not reach the kept host")
	}
}

type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []manualTimer
}

type manualTimer struct {
	at time.Time
	f  func()
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, manualTimer{c.now.Add(d), f})
	return func() bool { return true }
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t.f)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// TestDialledConnectionsUseRawIO: upstream connections have raw reads
// and writes (rawio) unless StandardSocketIO is set.
func TestDialledConnectionsUseRawIO(t *testing.T) {
	addr := listen(t)
	for _, tt := range []struct {
		standard bool
		want     string
	}{{false, "*rawio.Conn"}, {true, "*net.TCPConn"}} {
		c := newCluster(withLimits(config.DefaultLimits(), addr), Options{Clock: outlier.SystemClock{}, StandardSocketIO: tt.standard})
		conn, err := c.dialLimited(context.Background(), c.state.Load(), addr, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", conn.(*slotConn).Conn); got != tt.want {
			t.Errorf("StandardSocketIO %v: dialled %s, want %s", tt.standard, got, tt.want)
		}
		conn.Close()
	}
}
