package outlier

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock runs timers when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves time forward and runs the timers due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

type fixture struct {
	t       *testing.T
	clock   *fakeClock
	d       *Detector
	changes atomic.Int32
}

func newFixture(t *testing.T, s Settings) *fixture {
	f := &fixture{t: t, clock: newFakeClock()}
	f.d = New(s, Options{Name: "c", Clock: f.clock, OnChange: func() { f.changes.Add(1) }, Percent: func() uint32 { return 0 }})
	t.Cleanup(f.d.Close)
	return f
}

func settings(mod func(*Settings)) Settings {
	s := Defaults()
	s.MaxEjectionPercent = 100
	if mod != nil {
		mod(&s)
	}
	return s
}

// send admits one request and reports r; it fails if the host refuses.
// It returns whether the report ejected the host.
func (f *fixture) send(h *Host, r Result) (ejected bool) {
	f.t.Helper()
	tk, ok := h.Admit()
	if !ok {
		f.t.Fatal("host refused a request")
	}
	return h.Report(tk, r)
}

// fail reports n failures and returns how many of them ejected the host.
func (f *fixture) fail(h *Host, n int) (ejections int) {
	f.t.Helper()
	for range n {
		if f.send(h, Failure) {
			ejections++
		}
	}
	return ejections
}

func TestTripsAfterConsecutiveFailures(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 3 }))
	h := f.d.NewHost("a")
	f.fail(h, 2)
	f.send(h, Success) // resets the run
	if f.fail(h, 2) != 0 || !h.Available() {
		t.Fatal("ejected after 2 consecutive failures, want 3")
	}
	// Gateway failures count as 5xx too; the report that ejects says so.
	if ejected := f.send(h, GatewayFailure); !ejected || h.Available() || !h.Ejected() {
		t.Fatalf("after 3 consecutive failures: Report said ejected %v, available %v; want the host ejected", ejected, h.Available())
	}
	if f.changes.Load() == 0 {
		t.Error("OnChange not called on ejection")
	}
	if _, ok := h.Admit(); ok {
		t.Error("an ejected host admitted a request")
	}
}

func TestProbeAfterEjectionTime(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 1; s.BaseEjectionTime = 10 * time.Second }))
	h := f.d.NewHost("a")
	f.fail(h, 1)
	f.clock.Advance(9 * time.Second)
	if h.Available() {
		t.Fatal("readmitted before base_ejection_time")
	}
	f.clock.Advance(time.Second)
	if !h.Available() {
		t.Fatal("not readmitted after base_ejection_time")
	}
	probe, ok := h.Admit()
	if !ok {
		t.Fatal("readmitted host refused its probe")
	}
	if _, ok := h.Admit(); ok || h.Available() {
		t.Fatal("a second request was admitted while the probe is in flight")
	}
	if h.Report(probe, Success) {
		t.Error("a successful probe's Report said it ejected the host")
	}
	if !h.Available() || f.d.Ejected() != 0 {
		t.Fatalf("after a successful probe: available %v, ejected %d; want back in service", h.Available(), f.d.Ejected())
	}
	f.send(h, Success)
}

func TestFailedProbeEjectsForLonger(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 1; s.BaseEjectionTime = 10 * time.Second }))
	h := f.d.NewHost("a")
	f.fail(h, 1)
	f.clock.Advance(10 * time.Second)
	if !f.send(h, Failure) { // the probe fails: second ejection, 2 × base
		t.Error("the failed probe's Report did not say it ejected the host")
	}
	f.clock.Advance(19 * time.Second)
	if h.Available() {
		t.Fatal("readmitted before 2 × base_ejection_time")
	}
	f.clock.Advance(time.Second)
	if !h.Available() {
		t.Fatal("not readmitted after 2 × base_ejection_time")
	}
}

func TestEjectionTimeCappedAndDecays(t *testing.T) {
	s := settings(func(s *Settings) {
		s.Consecutive5xx = 1
		s.BaseEjectionTime = 10 * time.Second
		s.MaxEjectionTime = 25 * time.Second
		s.Interval = time.Minute
	})
	if got := s.ejectionTime(5); got != 25*time.Second {
		t.Errorf("5th ejection lasts %s, want the 25s cap", got)
	}
	if got := (&Settings{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second}).ejectionTime(3); got != time.Minute {
		t.Errorf("cap below base: %s, want base", got)
	}
	f := newFixture(t, s)
	h := f.d.NewHost("a")
	for range 2 { // ejected twice in a row: 10s, then 20s
		f.fail(h, 1)
		f.clock.Advance(25 * time.Second)
	}
	f.send(h, Success)               // back in service
	f.clock.Advance(2 * time.Minute) // two intervals of health: multiplier 2 → 0
	f.fail(h, 1)
	f.clock.Advance(10 * time.Second)
	if !h.Available() {
		t.Error("after two healthy intervals the next ejection should last base_ejection_time again")
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		name     string
		hosts    int
		percent  uint32
		always   bool
		wantMost int
	}{
		{"10 % of 10 hosts", 10, 10, false, 1},
		{"10 % of 30 hosts", 30, 10, false, 3},
		{"10 % of 3 hosts still ejects one", 3, 10, false, 1},
		{"10 % of a single host", 1, 10, false, 1},
		{"0 % ejects none", 3, 0, false, 0},
		{"0 % with always_eject_one_host", 3, 0, true, 1},
		{"50 % of 4 hosts", 4, 50, false, 2},
		{"100 %", 3, 100, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, settings(func(s *Settings) {
				s.Consecutive5xx = 1
				s.MaxEjectionPercent = tt.percent
				s.AlwaysEjectOneHost = tt.always
			}))
			var hosts []*Host
			for i := range tt.hosts {
				hosts = append(hosts, f.d.NewHost(string(rune('a'+i))))
			}
			for _, h := range hosts {
				for range 3 {
					if tk, ok := h.Admit(); ok {
						h.Report(tk, Failure)
					}
				}
			}
			if got := f.d.Ejected(); got != tt.wantMost {
				t.Errorf("ejected %d hosts, want %d", got, tt.wantMost)
			}
		})
	}
}

func TestRemoveReleasesTheSlot(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 1; s.MaxEjectionPercent = 50 }))
	a, b, c, d := f.d.NewHost("a"), f.d.NewHost("b"), f.d.NewHost("c"), f.d.NewHost("d")
	f.fail(a, 1)
	f.fail(b, 1)
	f.fail(c, 1)
	if c.Ejected() {
		t.Fatal("a third of four hosts ejected at 50 %")
	}
	a.Remove()
	d.Remove()
	if f.d.Ejected() != 1 {
		t.Fatalf("ejected = %d after removing an ejected host, want 1", f.d.Ejected())
	}
	f.fail(c, 1) // now 2 of 2 hosts would be 100 %
	if c.Ejected() {
		t.Error("ejected beyond the percentage after removals")
	}
	f.clock.Advance(time.Hour) // the removed host's timer was stopped
	if a.Available() {
		t.Error("a removed host became available")
	}
}

func TestGatewayFailureDetection(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) {
		s.Consecutive5xx = 10
		s.ConsecutiveGatewayFailure = 2
		s.EnforcingGatewayFailure = 100
	}))
	h := f.d.NewHost("a")
	f.send(h, GatewayFailure)
	f.send(h, Failure) // a 500 ends the gateway run
	f.send(h, GatewayFailure)
	if h.Ejected() {
		t.Fatal("ejected after a broken run of gateway failures")
	}
	f.send(h, GatewayFailure)
	if !h.Ejected() {
		t.Fatal("not ejected after 2 consecutive gateway failures")
	}
}

func TestEnforcingPercentages(t *testing.T) {
	s := settings(func(s *Settings) { s.Consecutive5xx = 1; s.Enforcing5xx = 30 })
	for draw, want := range map[uint32]bool{29: true, 30: false} {
		d := New(s, Options{Clock: newFakeClock(), Percent: func() uint32 { return draw }})
		h := d.NewHost("a")
		tk, _ := h.Admit()
		h.Report(tk, Failure)
		if h.Ejected() != want {
			t.Errorf("draw %d under enforcing 30 %%: ejected %v, want %v", draw, h.Ejected(), want)
		}
		d.Close()
	}
	// Envoy's default enforcing_consecutive_gateway_failure is 0.
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 100; s.ConsecutiveGatewayFailure = 1 }))
	h := f.d.NewHost("a")
	f.send(h, GatewayFailure)
	if h.Ejected() {
		t.Error("gateway failures ejected with enforcing 0")
	}
}

func TestIgnoredResults(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 2; s.BaseEjectionTime = time.Second }))
	h := f.d.NewHost("a")
	f.send(h, Failure)
	f.send(h, Ignored)
	f.send(h, Failure)
	if !h.Ejected() {
		t.Fatal("an ignored result broke the run of failures")
	}
	f.clock.Advance(time.Second)
	probe, _ := h.Admit()
	h.Report(probe, Ignored) // the client went away: probe again
	if !h.Available() {
		t.Fatal("an ignored probe left the host out of service")
	}
	f.send(h, Success)
	if h.Ejected() {
		t.Error("still ejected after a successful second probe")
	}
}

func TestSuccessesTakeNoLock(t *testing.T) {
	f := newFixture(t, settings(nil))
	h := f.d.NewHost("a")
	for range 100 {
		f.send(h, Success)
	}
	if n := h.cb.Counts().Requests; n != 0 {
		t.Errorf("the breaker saw %d requests, want 0: healthy successes must bypass it", n)
	}
	f.send(h, Failure)
	f.send(h, Success)
	if c := h.cb.Counts(); c.TotalFailures != 1 || c.ConsecutiveSuccesses != 1 {
		t.Errorf("breaker counts %+v, want the failure and the success that ended it", c)
	}
}

func TestNilHost(t *testing.T) {
	var h *Host
	if !h.Available() || h.Ejected() {
		t.Error("nil host should be available")
	}
	tk, ok := h.Admit()
	h.Report(tk, Failure)
	h.Remove()
	if !ok {
		t.Error("nil host refused")
	}
}

func TestConcurrentReports(t *testing.T) {
	f := newFixture(t, settings(func(s *Settings) { s.Consecutive5xx = 3; s.BaseEjectionTime = time.Second }))
	hosts := []*Host{f.d.NewHost("a"), f.d.NewHost("b")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				h := hosts[(g+i)%2]
				tk, ok := h.Admit()
				if !ok {
					continue
				}
				h.Report(tk, Result((g*i)%3))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			f.clock.Advance(time.Second)
		}
	})
	wg.Wait()
	if n := f.d.Ejected(); n < 0 || n > 2 {
		t.Errorf("ejected count %d out of range", n)
	}
}
