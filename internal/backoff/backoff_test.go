package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDelay(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name   string
		jitter float64
		rand   float64
		want   []time.Duration // for retries 0, 1, 2, …
	}{
		{"no jitter: the exponential delay, capped", 0, 0.7, []time.Duration{100, 200, 400, 800, 1000, 1000}},
		{"equal jitter, lowest draw: half the delay", 0.5, 0, []time.Duration{50, 100, 200, 400, 500, 500}},
		{"equal jitter, highest draw: just under the delay", 0.5, 0.999999999, []time.Duration{99, 199, 399, 799, 999, 999}},
		{"a fifth random, lowest draw", 0.2, 0, []time.Duration{80, 160, 320, 640, 800, 800}},
		{"full jitter, lowest draw: no wait", 1, 0, []time.Duration{0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Base: 100 * ms, Max: time.Second, Jitter: tt.jitter, Rand: func() float64 { return tt.rand }}
			var got []time.Duration
			for n := range tt.want {
				got = append(got, p.Delay(n)/ms)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays in ms (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDelayStaysWithinBounds: with the default random source every delay
// lies in [d·(1−Jitter), d], d the capped exponential delay, even for
// retry counts whose exponential would overflow.
func TestDelayStaysWithinBounds(t *testing.T) {
	p := Policy{Base: 250 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}
	for n := range 200 {
		d := min(p.Base<<min(n, 20), p.Max)
		got := p.Delay(n)
		if got < d*8/10 || got > d {
			t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, got, d*8/10, d)
		}
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(t.Context(), time.Microsecond) {
		t.Error("Sleep with a live context returned false, want true")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context returned true, want false")
	}
}

// TestUntilFirstSuccess (issue 14 item 7): before a first success the
// first retry comes within 25 ms and no retry waits over a second; after
// it, the caller's own delay applies.
func TestUntilFirstSuccess(t *testing.T) {
	const ms = time.Millisecond
	for _, tt := range []struct {
		d               time.Duration
		n               int
		succeeded       bool
		atLeast, atMost time.Duration
	}{
		{250 * ms, 0, false, 20 * ms, FirstSuccessBase},
		{250 * ms, 2, false, 80 * ms, 100 * ms},
		{250 * ms, 5, false, 250 * ms, 250 * ms}, // never longer than the caller's own
		{30 * time.Second, 10, false, 800 * ms, FirstSuccessMax},
		{250 * ms, 0, true, 250 * ms, 250 * ms},
		{30 * time.Second, 10, true, 30 * time.Second, 30 * time.Second},
	} {
		if got := UntilFirstSuccess(tt.d, tt.n, tt.succeeded); got < tt.atLeast || got > tt.atMost {
			t.Errorf("UntilFirstSuccess(%v, %d, %v) = %v, want within [%v, %v]", tt.d, tt.n, tt.succeeded, got, tt.atLeast, tt.atMost)
		}
	}
}
