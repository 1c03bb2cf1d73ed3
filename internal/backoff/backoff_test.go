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

func TestUntilFirstSuccess(t *testing.T) {
	for _, tt := range []struct {
		d         time.Duration
		succeeded bool
		want      time.Duration
	}{
		{250 * time.Millisecond, false, 250 * time.Millisecond},
		{30 * time.Second, false, FirstSuccessMax},
		{30 * time.Second, true, 30 * time.Second},
	} {
		if got := UntilFirstSuccess(tt.d, tt.succeeded); got != tt.want {
			t.Errorf("UntilFirstSuccess(%v, %v) = %v, want %v", tt.d, tt.succeeded, got, tt.want)
		}
	}
}
