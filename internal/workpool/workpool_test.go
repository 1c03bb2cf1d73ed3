package workpool

import (
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

// TestPool runs rounds of jobs that all run at once: a round's jobs find
// the workers the last round left waiting (at most maxIdle), and new
// workers start only for the rest; waiting workers leave after the idle
// timeout, or when done is closed.
func TestPool(t *testing.T) {
	const hour = time.Hour
	tests := []struct {
		name        string
		concurrent  int // jobs running at once in each round
		rounds      int
		maxIdle     int
		timeout     time.Duration
		closeDone   bool  // after the rounds
		wantStarted int64 // workers started over the rounds
		wantIdle    int   // waiting after the rounds
	}{
		{name: "one after another", concurrent: 1, rounds: 5, maxIdle: 4, timeout: hour, wantStarted: 1, wantIdle: 1},
		{name: "at once", concurrent: 6, rounds: 3, maxIdle: 16, timeout: hour, wantStarted: 6, wantIdle: 6},
		{name: "idle bounded", concurrent: 6, rounds: 3, maxIdle: 2, timeout: hour, wantStarted: 6 + 4 + 4, wantIdle: 2},
		{name: "idle timeout", concurrent: 3, rounds: 1, maxIdle: 4, timeout: 20 * time.Millisecond, wantStarted: 3, wantIdle: 0},
		{name: "done closed", concurrent: 3, rounds: 1, maxIdle: 4, timeout: hour, closeDone: true, wantStarted: 3, wantIdle: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			if !tc.closeDone {
				t.Cleanup(func() { close(done) })
			}
			var running, ran sync.WaitGroup
			release := make(chan struct{})
			p := New(func(int) {
				running.Done()
				<-release
				ran.Done()
			}, tc.maxIdle, tc.timeout, done)
			for round := range tc.rounds {
				running.Add(tc.concurrent)
				ran.Add(tc.concurrent)
				for i := range tc.concurrent {
					p.Go(round*tc.concurrent + i)
				}
				running.Wait() // every job of the round runs at once
				for range tc.concurrent {
					release <- struct{}{}
				}
				ran.Wait()
				if tc.timeout == hour {
					// The workers that stay are waiting before the next round.
					waitIdle(t, p, min(tc.concurrent, tc.maxIdle))
				}
			}
			if got := p.Started(); got != tc.wantStarted {
				t.Fatalf("%d workers started, want %d", got, tc.wantStarted)
			}
			if tc.closeDone {
				close(done)
			}
			waitIdle(t, p, tc.wantIdle)
		})
	}
}

// waitIdle waits until want workers wait for a job, parked in their
// select (counted from a goroutine dump): a worker counted idle may not
// have reached it yet, and a job given then would start another.
func waitIdle(t *testing.T, p *Pool[int], want int) {
	t.Helper()
	poll.Until(t, 5*time.Second, fmt.Sprintf("%d workers waiting", want), func() error {
		if got := p.Idle(); got != want {
			return fmt.Errorf("%d workers wait", got)
		}
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		parked := 0
		for _, g := range strings.Split(b.String(), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "workpool.(*Pool[...]).worker") {
				parked++
			}
		}
		if parked != want {
			return fmt.Errorf("%d workers parked", parked)
		}
		return nil
	})
}
