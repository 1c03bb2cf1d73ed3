package main

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (gcPercent int, limit int64) {
	gcPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	return gcPercent, debug.SetMemoryLimit(-1)
}

func TestPauseGCUntilReady(t *testing.T) {
	const long = time.Hour
	tests := []struct {
		name  string
		gogc  string
		most  time.Duration
		end   func(ready chan struct{}, cancel context.CancelFunc)
		pause bool
	}{
		{name: "ready, then settled", most: long, end: func(r chan struct{}, _ context.CancelFunc) { close(r) }, pause: true},
		{name: "never ready: the cap ends it", most: 20 * time.Millisecond, end: func(chan struct{}, context.CancelFunc) {}, pause: true},
		{name: "shutdown before ready", most: long, end: func(_ chan struct{}, cancel context.CancelFunc) { cancel() }, pause: true},
		{name: "operator's GOGC", gogc: "150", most: long, end: func(chan struct{}, context.CancelFunc) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.gogc != "" {
				t.Setenv("GOGC", tt.gogc)
			}
			wantPercent, wantLimit := gcSettings()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan struct{})
			done := pauseGCUntilReady(ctx, ready, 10*time.Millisecond, tt.most)
			percent, limit := gcSettings()
			switch {
			case tt.pause && (percent != -1 || limit != min(wantLimit, startupGCLimit)):
				t.Errorf("while paused: GOGC %d, memory limit %d; want -1 and %d", percent, limit, min(wantLimit, startupGCLimit))
			case !tt.pause && (percent != wantPercent || limit != wantLimit):
				t.Errorf("with GOGC set: GOGC %d, memory limit %d; want them untouched (%d, %d)", percent, limit, wantPercent, wantLimit)
			}
			tt.end(ready, cancel)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the pause did not end")
			}
			if percent, limit := gcSettings(); percent != wantPercent || limit != wantLimit {
				t.Errorf("after the pause: GOGC %d, memory limit %d; want %d and %d as before", percent, limit, wantPercent, wantLimit)
			}
		})
	}
}
