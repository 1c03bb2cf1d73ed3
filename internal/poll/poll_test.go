package poll

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeT records what Until reports instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	before := time.Now()
	at := Until(t, 10*time.Second, "third call", func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
	if at.Before(before) || at.After(time.Now()) {
		t.Errorf("returned %v, not the time the condition held", at)
	}
}

func TestUntilFailsWithTheLastError(t *testing.T) {
	f := &fakeT{TB: t}
	n := 0
	Until(f, 20*time.Millisecond, "the impossible", func() error { n++; return fmt.Errorf("attempt %d", n) })
	want := fmt.Sprintf("the impossible: not true within 20ms: attempt %d", n)
	if f.failed != want {
		t.Errorf("failure %q, want %q", f.failed, want)
	}
}

func TestUntilTrue(t *testing.T) {
	f := &fakeT{TB: t}
	UntilTrue(f, 5*time.Millisecond, "never", func() bool { return false })
	if f.failed != "never: not true within 5ms" {
		t.Errorf("failure %q", f.failed)
	}
	f.failed = ""
	UntilTrue(f, time.Second, "always", func() bool { return true })
	if f.failed != "" {
		t.Errorf("failed although the condition held: %q", f.failed)
	}
}

func TestWaitWrapsTheLastError(t *testing.T) {
	cause := errors.New("connection refused")
	err := Wait(5*time.Millisecond, "admin API up", func() error { return cause })
	if !errors.Is(err, cause) || !strings.HasPrefix(err.Error(), "admin API up: not true within 5ms") {
		t.Errorf("Wait = %v", err)
	}
	if err := Wait(time.Second, "x", func() error { return nil }); err != nil {
		t.Errorf("Wait on a holding condition = %v", err)
	}
}

func TestPauseIsATenthOfTheWaitBetweenBounds(t *testing.T) {
	for _, tt := range []struct{ waited, want time.Duration }{
		{0, time.Millisecond},
		{5 * time.Millisecond, time.Millisecond},
		{65 * time.Millisecond, 6500 * time.Microsecond},
		{300 * time.Millisecond, 30 * time.Millisecond},
		{time.Minute, 50 * time.Millisecond},
	} {
		if got := pause(tt.waited); got != tt.want {
			t.Errorf("pause(%v) = %v, want %v", tt.waited, got, tt.want)
		}
	}
}

func TestStreakNeedsConsecutiveSuccesses(t *testing.T) {
	results := []error{nil, nil, errors.New("flap"), nil, nil, nil}
	calls := 0
	cond := streak(3, func() error { err := results[calls]; calls++; return err })
	var got []bool
	for range results {
		got = append(got, cond() == nil)
	}
	want := []bool{false, false, false, false, false, true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("held after each call: %v, want %v (three in a row, after the flap)", got, want)
	}
}
