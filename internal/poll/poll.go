// Package poll waits, in tests and benchmark harnesses, for a condition
// that nothing announces: another process's state, a Consul query, a
// counter inside the code under test. Where the code under test can
// signal (a channel, a callback), wait on that instead.
//
// A condition is called at once, then again after a pause of a tenth of
// the time waited so far, at least 1 ms and at most 50 ms: a condition
// that takes d to hold is seen by about 1.1 d (a quick one within a
// millisecond or two), and a slow one costs a call per 50 ms.
package poll

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Pauses between two calls of a condition.
const (
	minPause = time.Millisecond
	maxPause = 50 * time.Millisecond
)

// Until calls cond until it returns nil and returns the time it did. If
// cond has not held within the given time, it fails t with what and
// cond's last error.
func Until(t testing.TB, within time.Duration, what string, cond func() error) time.Time {
	t.Helper()
	at, err := wait(within, cond)
	if err != nil {
		t.Fatalf("%s: not true within %v: %v", what, within, err)
	}
	return at
}

// UntilTrue is Until for a condition that has no reason to give.
func UntilTrue(t testing.TB, within time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	at, err := wait(within, boolCond(cond))
	if err != nil {
		t.Fatalf("%s: not true within %v", what, within)
	}
	return at
}

// UntilStreak is Until for a condition that must hold n calls in a row:
// a change that several proxies apply one by one holds once, on the first
// of them, before it holds for good.
func UntilStreak(t testing.TB, within time.Duration, what string, n int, cond func() error) time.Time {
	t.Helper()
	return Until(t, within, what, streak(n, cond))
}

// streak returns a condition that holds once cond has held n times in a
// row.
func streak(n int, cond func() error) func() error {
	held := 0
	return func() error {
		if err := cond(); err != nil {
			held = 0
			return err
		}
		if held++; held < n {
			return fmt.Errorf("held %d of %d times in a row", held, n)
		}
		return nil
	}
}

// Wait is Until for code without a test: it returns an error naming what
// and cond's last error if cond has not held within the given time.
func Wait(within time.Duration, what string, cond func() error) error {
	if _, err := wait(within, cond); err != nil {
		return fmt.Errorf("%s: not true within %v: %w", what, within, err)
	}
	return nil
}

var errFalse = errors.New("condition false")

func boolCond(cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errFalse
	}
}

// wait calls cond until it returns nil or within has passed; it returns
// when cond held, or cond's last error.
func wait(within time.Duration, cond func() error) (time.Time, error) {
	start := time.Now()
	for {
		err := cond()
		now := time.Now()
		if err == nil {
			return now, nil
		}
		waited := now.Sub(start)
		if waited > within {
			return time.Time{}, err
		}
		<-time.After(pause(waited)) // the next call, not a synchronisation
	}
}

// pause is how long to wait before the next call of a condition that has
// not held for waited.
func pause(waited time.Duration) time.Duration {
	return min(max(waited/10, minPause), maxPause)
}
