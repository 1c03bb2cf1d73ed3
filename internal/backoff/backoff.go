// Package backoff is Weft's one rule for pacing retries: exponentially
// growing delays, capped, with part of each delay random so that many
// clients retrying at once spread out. Discovery's Consul queries, the
// sidecar's xDS reconnections and NACK repeats, and leaf certificate
// renewals all use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy computes the delay before each retry. It is a value without
// state: the caller counts its consecutive failures and starts the count
// over after a success.
type Policy struct {
	// Base is the delay before the first retry, before jitter.
	Base time.Duration
	// Max caps the delay: no delay is longer.
	Max time.Duration
	// Jitter is the fraction of each delay that is random, in [0, 1]:
	// the delay is drawn uniformly from [d·(1−Jitter), d). 0.5 is
	// "equal jitter".
	Jitter float64
	// Rand returns a number in [0, 1); math/rand/v2's Float64 when nil.
	// Tests set it.
	Rand func() float64
}

// Delay returns the wait before retry n (0 for the first retry after a
// success): d = Base·2ⁿ capped at Max, of which the Jitter fraction is
// random. It is safe for concurrent use if Rand is.
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	random := p.Rand
	if random == nil {
		random = rand.Float64
	}
	low := d - time.Duration(p.Jitter*float64(d))
	return low + time.Duration(random()*float64(d-low))
}

// Sleep waits for d or until ctx is done; it reports whether it waited
// the full d.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Until a first success, retries start sooner and never wait long: a
// process started before the server it needs (a sidecar before its
// control plane, in a pod whose containers start together) must neither
// sit out a long backoff once the server is up nor a full base delay after
// a first attempt that failed moments before the server was listening
// (BenchmarkBringUpUnderLoad in e2e saw sidecars fail ≈ 10 ms before their
// control plane bound, then wait 200–250 ms). The first retry waits 20–25
// ms and the delay doubles up to a second: a few more attempts in the
// first second while the server is not up, then one a second.
const (
	FirstSuccessBase = 25 * time.Millisecond
	FirstSuccessMax  = time.Second
)

// firstSuccess paces retries until a first success.
var firstSuccess = Policy{Base: FirstSuccessBase, Max: FirstSuccessMax, Jitter: 0.2}

// UntilFirstSuccess is the wait before retry n (from 0) of a caller whose
// own policy waits d: d once there has been a success; until then, no
// longer than FirstSuccessBase·2ⁿ, capped at FirstSuccessMax (the last
// fifth random).
func UntilFirstSuccess(d time.Duration, n int, succeeded bool) time.Duration {
	if succeeded {
		return d
	}
	return min(d, firstSuccess.Delay(n))
}
