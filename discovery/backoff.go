package discovery

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff computes exponentially growing, jittered delays between retries
// of a failing request. It is used by one goroutine; it is not safe for
// concurrent use.
type backoff struct {
	base, max time.Duration
	attempt   int
	// jitter returns a number in [0, 1); rand.Float64 unless a test sets it.
	jitter func() float64
}

func newBackoff(base, max time.Duration) *backoff {
	return &backoff{base: base, max: max, jitter: rand.Float64}
}

// next returns the delay before the next retry: base·2^attempt capped at
// max, of which the upper half is random ("equal jitter"), so delays keep
// growing while retries from many watches spread out.
func (b *backoff) next() time.Duration {
	d := b.base
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	half := d / 2
	return half + time.Duration(b.jitter()*float64(d-half))
}

// reset starts the delays over after a success.
func (b *backoff) reset() { b.attempt = 0 }

// sleepCtx waits for d or until ctx is done; it reports whether it waited
// the full d.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
