package outlier

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Host states. Available hosts are closed or awaiting their probe.
const (
	closed        int32 = iota // in service; reports take the lock-free path
	ejected                    // out of service until readmitted
	awaitingProbe              // readmitted: the next request probes it
	probing                    // a probe is in flight; out of service
	removed                    // left the cluster
)

// Host is one upstream host's breaker and ejection state. Its methods are
// safe for concurrent use. A nil *Host (no outlier detection) is always
// available and ignores reports.
type Host struct {
	d       *Detector
	addr    string
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	state   atomic.Int32
	failing atomic.Int32 // failures reported since the last success, lock-free path
	gateway atomic.Int32 // consecutive gateway failures

	mu           sync.Mutex // guards the ejection history
	times        int
	healthySince time.Time
}

// NewHost adds a host named addr to the detector's cluster.
func (d *Detector) NewHost(addr string) *Host {
	h := &Host{d: d, addr: addr}
	h.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        d.opts.Name + "/" + addr,
		MaxRequests: 1,
		// Counts are never reset by time in the closed state: Envoy's
		// consecutive counters are only reset by a success.
		Interval: 0,
		// The ejection time is the Detector's (it grows with every
		// ejection); once it has passed, the breaker must go half-open
		// at once to let the probe through.
		Timeout:       time.Nanosecond,
		ReadyToTrip:   h.readyToTrip,
		OnStateChange: h.onStateChange,
		IsExcluded:    func(err error) bool { return err == errIgnored },
	})
	d.hosts.Add(1)
	return h
}

// Available reports whether the host may be offered to a picker.
func (h *Host) Available() bool {
	if h == nil {
		return true
	}
	s := h.state.Load()
	return s == closed || s == awaitingProbe
}

// Breaker returns the host's breaker state as outlier detection applies
// it: open while ejected, half-open once readmitted until its probe
// succeeds, else closed (also for a nil Host).
func (h *Host) Breaker() gobreaker.State {
	if h == nil {
		return gobreaker.StateClosed
	}
	switch h.state.Load() {
	case ejected:
		return gobreaker.StateOpen
	case awaitingProbe, probing:
		return gobreaker.StateHalfOpen
	}
	return gobreaker.StateClosed
}

// Ejected reports whether the host is out of service because of its
// breaker (ejected or probing).
func (h *Host) Ejected() bool { return h != nil && !h.Available() && h.state.Load() != removed }

// Ticket is an admitted request's claim to report its result; the zero
// Ticket is a request on the lock-free path.
type Ticket struct {
	done func(error)
}

// Admit is called after a picker chose the host. A closed host is
// admitted without locking; a host awaiting its probe admits exactly one
// request, the probe, and leaves service until it completes. It reports
// false when the host cannot take the request (its state changed since
// the picker was built); the caller picks again.
func (h *Host) Admit() (Ticket, bool) {
	if h == nil {
		return Ticket{}, true
	}
	switch h.state.Load() {
	case closed:
		return Ticket{}, true
	case awaitingProbe:
	default:
		return Ticket{}, false
	}
	done, err := h.cb.Allow()
	if err != nil || !h.state.CompareAndSwap(awaitingProbe, probing) {
		if err == nil {
			done(errIgnored)
		}
		h.d.flush()
		return Ticket{}, false
	}
	h.d.changed.Store(true)
	h.d.flush()
	return Ticket{done: done}, true
}

// Report records the result of an admitted request. It reports whether
// the result opened the host's breaker (ejected it, or re-ejected it
// after a failed probe).
func (h *Host) Report(t Ticket, r Result) (tripped bool) {
	if h == nil {
		return false
	}
	switch r {
	case GatewayFailure:
		h.gateway.Add(1)
	case Success, Failure:
		if h.gateway.Load() != 0 {
			h.gateway.Store(0)
		}
	}
	if t.done != nil {
		return h.reportProbe(t, r)
	}
	if r == Ignored || h.state.Load() != closed {
		return false // not this host's doing, or a late report of a past episode
	}
	if r == Success {
		if h.failing.Load() == 0 {
			return false // nothing to reset: the common case takes no lock
		}
		h.failing.Store(0)
	} else {
		h.failing.Add(1)
	}
	if done, err := h.cb.Allow(); err == nil {
		done(r.err())
	}
	h.d.flush()
	return r != Success && h.state.Load() == ejected
}

func (h *Host) reportProbe(t Ticket, r Result) (tripped bool) {
	t.done(r.err())
	if r == Ignored {
		// The probe told nothing: let the next request probe.
		h.state.CompareAndSwap(probing, awaitingProbe)
		h.d.changed.Store(true)
	}
	h.d.flush()
	return r != Success && r != Ignored && h.state.Load() == ejected
}

// readyToTrip runs under the breaker's lock on each failure in the
// closed state.
func (h *Host) readyToTrip(c gobreaker.Counts) bool {
	s := &h.d.s
	trip := c.ConsecutiveFailures >= s.Consecutive5xx && h.d.enforce(s.Enforcing5xx) ||
		uint32(h.gateway.Load()) >= s.ConsecutiveGatewayFailure && h.d.enforce(s.EnforcingGatewayFailure)
	return trip && h.d.reserve()
}

// onStateChange runs under the breaker's lock. The breaker is
// authoritative: whatever the host's state, opening ejects it and
// closing restores it.
func (h *Host) onStateChange(_ string, from, to gobreaker.State) {
	switch to {
	case gobreaker.StateOpen:
		h.eject(from)
	case gobreaker.StateClosed:
		h.restore()
	}
}

// eject takes the host out of service for its ejection time. Tripping
// from closed took an ejection slot (readyToTrip); reopening after a
// failed probe keeps the one it holds.
func (h *Host) eject(from gobreaker.State) {
	switch h.state.Load() {
	case removed:
		if from == gobreaker.StateClosed {
			h.d.ejected.Add(-1)
		}
		return
	case ejected:
		return // a late report reopened a breaker whose host is still out
	}
	d := h.d
	now := d.opts.Clock.Now()
	h.mu.Lock()
	if !h.healthySince.IsZero() && d.s.Interval > 0 {
		h.times = max(0, h.times-int(now.Sub(h.healthySince)/d.s.Interval))
	}
	h.times++
	after := d.s.ejectionTime(h.times)
	h.mu.Unlock()
	if j := d.s.MaxEjectionTimeJitter; j > 0 {
		after += time.Duration(rand.Int64N(int64(j) + 1))
	}
	h.state.Store(ejected)
	h.failing.Store(0)
	d.changed.Store(true)
	d.schedule(h, after)
	h.observe(gobreaker.StateOpen)
}

// observe tells the OnBreaker observer the host's new state.
func (h *Host) observe(s gobreaker.State) {
	if f := h.d.opts.OnBreaker; f != nil {
		f(h.addr, s)
	}
}

// readmit ends an ejection: the next request probes the host.
func (h *Host) readmit() {
	if h.state.CompareAndSwap(ejected, awaitingProbe) {
		h.observe(gobreaker.StateHalfOpen)
		h.d.opts.OnChange()
	}
}

// restore returns the host to service after a successful probe (or a
// late success that closed the breaker first).
func (h *Host) restore() {
	for {
		s := h.state.Load()
		if s == closed || s == removed {
			return
		}
		if h.state.CompareAndSwap(s, closed) {
			break
		}
	}
	h.d.unschedule(h)
	h.mu.Lock()
	h.healthySince = h.d.opts.Clock.Now()
	h.mu.Unlock()
	h.failing.Store(0)
	h.gateway.Store(0)
	h.d.ejected.Add(-1)
	h.d.changed.Store(true)
	h.observe(gobreaker.StateClosed)
}

// Remove takes the host out of the cluster for good, releasing its
// ejection slot.
func (h *Host) Remove() {
	if h == nil {
		return
	}
	prev := h.state.Swap(removed)
	if prev == removed {
		return
	}
	h.d.unschedule(h)
	if prev != closed {
		h.d.ejected.Add(-1)
	}
	h.d.hosts.Add(-1)
}
