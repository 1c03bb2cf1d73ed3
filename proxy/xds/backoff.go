package xds

import (
	"cmp"
	"time"

	"github.com/weft-mesh/weft/internal/backoff"
)

// Backoff paces retries: exponential delays, the last fifth of each
// random (see internal/backoff).
type Backoff struct {
	// Base is the first delay (default 250ms).
	Base time.Duration
	// Max caps the delay (default 30s).
	Max time.Duration
}

// retryDelay is the wait before retry number n of a client that has, or
// has never, been answered by a management server (shorter until then:
// backoff.UntilFirstSuccess).
func (b Backoff) retryDelay(n int, everAnswered bool) time.Duration {
	return backoff.UntilFirstSuccess(b.Delay(n), n, everAnswered)
}

// Delay returns the wait before retry number n (0 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	return backoff.Policy{
		Base:   cmp.Or(b.Base, 250*time.Millisecond),
		Max:    cmp.Or(b.Max, 30*time.Second),
		Jitter: 0.2,
	}.Delay(n)
}
