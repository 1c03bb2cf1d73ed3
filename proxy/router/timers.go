package router

import (
	"net/http"
	"sync/atomic"
	"time"
)

// idleTimer records a stream's last activity; the exchange's timer
// checks it. Activity is an atomic store. A nil *idleTimer records
// nothing: the exchange has no idle timeout.
type idleTimer struct {
	timeout time.Duration
	last    atomic.Int64 // UnixNano of the last activity
}

func (t *idleTimer) touch() {
	if t != nil {
		t.last.Store(time.Now().UnixNano())
	}
}

// startTimers arms one timer for both the route timeout and the stream
// idle timeout: it fires at whichever comes first and re-arms itself for
// the idle time left while the stream is active. An exchange without
// either has no timer.
func (ex *exchange) startTimers(r *http.Request, req Request) {
	a := ex.action
	var timeout time.Duration
	timeout, ex.grpc = effectiveTimeout(a, r)
	now := time.Now()
	if timeout > 0 {
		ex.deadline = now.Add(timeout)
	}
	idle := req.StreamIdleTimeout
	if a.HasIdleTimeout {
		idle = a.IdleTimeout
	}
	if idle > 0 {
		ex.idleState.timeout = idle
		ex.idleState.last.Store(now.UnixNano())
		ex.idle = &ex.idleState
	}
	if d, ok := ex.untilExpiry(now); ok {
		// Armed once set, so that expire never sees ex.timer unset.
		ex.timer = time.AfterFunc(time.Hour, ex.expire)
		ex.timer.Reset(d)
	}
}

// untilExpiry is the time from now to the deadline or the idle timeout,
// whichever is first; ok is false when the exchange has neither.
func (ex *exchange) untilExpiry(now time.Time) (d time.Duration, ok bool) {
	if !ex.deadline.IsZero() {
		d, ok = ex.deadline.Sub(now), true
	}
	if t := ex.idle; t != nil {
		left := t.timeout - time.Duration(now.UnixNano()-t.last.Load())
		if !ok || left < d {
			d, ok = left, true
		}
	}
	return d, ok
}

// expire runs on the timer's goroutine: it cancels the exchange whose
// deadline passed or whose stream was idle for its timeout, else re-arms
// the timer.
func (ex *exchange) expire() {
	if ex.finished.Load() {
		return
	}
	now := time.Now()
	if !ex.deadline.IsZero() && !now.Before(ex.deadline) {
		ex.cancel(errRouteTimeout)
		return
	}
	if t := ex.idle; t != nil && time.Duration(now.UnixNano()-t.last.Load()) >= t.timeout {
		ex.cancel(errIdleTimeout)
		return
	}
	if d, ok := ex.untilExpiry(now); ok {
		ex.timer.Reset(d)
	}
}

// stopTimers stops the exchange's timer for good.
func (ex *exchange) stopTimers() {
	ex.finished.Store(true)
	if ex.timer != nil {
		ex.timer.Stop()
	}
}
