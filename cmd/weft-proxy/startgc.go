package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"
)

// startupGCLimit bounds the heap while the collector is paused at start:
// past it the runtime collects anyway (it is a soft memory limit). A
// sidecar's first configuration leaves a heap of a few MB.
const startupGCLimit = 64 << 20

// startupSettle is how long after becoming ready the garbage collector
// stays paused, so that the first requests do not share the two cores
// with a collection.
const startupSettle = 2 * time.Second

// startupGCPause is how long the collector stays paused at most when the
// sidecar does not become ready (no control plane yet, say).
const startupGCPause = 5 * time.Second

// pauseGCUntilReady turns the garbage collector off until settle after
// ready is closed, or until most has passed without it, or until ctx
// ends; it then restores GOGC and the memory limit as they were and
// closes the channel it returned.
//
// Start-up allocates its few MB in a burst: package initialization, then
// decoding and compiling the first configuration. With GOGC's 4 MB
// minimum heap goal that took two collection cycles on the way to
// readiness, and a third once ready, beside the first requests; with them
// the bench's readiness (process start to first request served) was
// about 10 ms longer (docs/performance.md). While paused, startupGCLimit,
// or the memory limit already set if lower, still bounds the heap. An
// operator's GOGC is left alone: nothing is paused and the channel is
// closed at once.
func pauseGCUntilReady(ctx context.Context, ready <-chan struct{}, settle, most time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if os.Getenv("GOGC") != "" {
		close(done)
		return done
	}
	limit := debug.SetMemoryLimit(-1) // a negative limit only reads it
	gcPercent := debug.SetGCPercent(-1)
	debug.SetMemoryLimit(min(limit, startupGCLimit))
	go func() {
		defer close(done)
		defer func() {
			debug.SetGCPercent(gcPercent)
			debug.SetMemoryLimit(limit)
		}()
		deadline := time.NewTimer(most)
		defer deadline.Stop()
		select {
		case <-ready:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
		t := time.NewTimer(settle)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}()
	return done
}
