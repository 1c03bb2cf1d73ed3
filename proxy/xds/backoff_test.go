package xds

import (
	"testing"
	"time"
)

// TestRetryDelayBeforeFirstAnswer (issue 14 item 7): until a management
// server has answered once, the first retry comes within 25 ms (a sidecar
// whose first connection failed moments before its control plane bound
// does not wait out the 250 ms base) and no retry waits over a second, so
// a sidecar started before its control plane connects within a second of
// it coming up; once answered, the full backoff applies.
func TestRetryDelayBeforeFirstAnswer(t *testing.T) {
	b := Backoff{} // the defaults: 250ms doubling up to 30s
	for _, tt := range []struct {
		n            int
		everAnswered bool
		atMost       time.Duration
		atLeast      time.Duration
	}{
		{0, false, 25 * time.Millisecond, 20 * time.Millisecond},
		{3, false, 200 * time.Millisecond, 160 * time.Millisecond},
		{0, true, 250 * time.Millisecond, 200 * time.Millisecond},
		{10, false, time.Second, 800 * time.Millisecond},
		{10, true, 30 * time.Second, 24 * time.Second},
	} {
		if got := b.retryDelay(tt.n, tt.everAnswered); got > tt.atMost || got < tt.atLeast {
			t.Errorf("retryDelay(%d, answered=%v) = %v, want within [%v, %v]", tt.n, tt.everAnswered, got, tt.atLeast, tt.atMost)
		}
	}
}
