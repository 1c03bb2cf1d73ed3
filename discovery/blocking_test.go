package discovery

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
)

func TestNextIndex(t *testing.T) {
	tests := []struct {
		name       string
		prev, last uint64
		want       uint64
	}{
		{"first answer", 0, 10, 10},
		{"grew", 10, 12, 12},
		{"unchanged", 10, 10, 10},
		{"went backwards: full read", 10, 5, 0},
		{"zero from consul: block on 1", 0, 0, 1},
		{"zero after a positive index: reset first", 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextIndex(tt.prev, tt.last); got != tt.want {
				t.Errorf("nextIndex(%d, %d) = %d, want %d", tt.prev, tt.last, got, tt.want)
			}
		})
	}
}

func TestRunBlocking(t *testing.T) {
	type step struct {
		result string
		index  uint64
		err    error
	}
	errConsul := errors.New("connection refused")
	script := []step{
		{"A", 10, nil},     // first answer: delivered
		{"A", 10, nil},     // wait timed out: not delivered
		{"B", 12, nil},     // change: delivered
		{"", 0, errConsul}, // failure: not delivered, next wait on 0
		{"B", 12, nil},     // full read after a failure: delivered
		{"C", 5, nil},      // index went backwards: delivered, next wait on 0
		{"C", 0, nil},      // index 0: delivered, next wait on 1
		{"D", 7, nil},      // delivered
		{"", 0, errConsul}, // two failures in a row
		{"", 0, errConsul}, //
		{"D", 7, nil},      // delivered
	}
	wantWaitIndexes := []uint64{0, 10, 10, 12, 0, 12, 0, 1, 7, 0, 0}
	wantDelivered := []string{"A", "B", "B", "C", "C", "D", "D"}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	env := testEnv(Config{QueryWait: time.Minute, BackoffBase: time.Microsecond, BackoffMax: time.Millisecond})
	var waitIndexes []uint64
	fetch := func(q *api.QueryOptions) (string, uint64, error) {
		if q.WaitTime != time.Minute || q.Datacenter != "dc1" || q.Context() != ctx {
			t.Errorf("query options = %+v, want WaitTime 1m, Datacenter dc1 and the run's context", q)
		}
		if len(waitIndexes) == len(script) {
			cancel() // end of the script
			return "", 0, ctx.Err()
		}
		waitIndexes = append(waitIndexes, q.WaitIndex)
		s := script[len(waitIndexes)-1]
		return s.result, s.index, s.err
	}
	var delivered []string
	deliver := func(_ context.Context, r string) bool {
		delivered = append(delivered, r)
		return true
	}
	runBlocking(ctx, env, "test", fetch, deliver)

	if diff := cmp.Diff(wantWaitIndexes, waitIndexes); diff != "" {
		t.Errorf("wait indexes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDelivered, delivered); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if got := env.stats.snapshot(); got.WatchErrors != 3 || got.LastSuccess.IsZero() {
		t.Errorf("stats = %+v, want 3 errors and a last success", got)
	}
}

func TestRunBlockingStopsWhenDeliveryRefused(t *testing.T) {
	env := testEnv(Config{})
	calls := 0
	fetch := func(*api.QueryOptions) (int, uint64, error) {
		calls++
		return calls, uint64(calls), nil
	}
	runBlocking(t.Context(), env, "test", fetch, func(context.Context, int) bool { return false })
	if calls != 1 {
		t.Errorf("fetched %d times after the consumer refused the first result, want 1", calls)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name   string
		jitter float64
		want   []time.Duration
	}{
		{
			name:   "no jitter: half the exponential delay",
			jitter: 0,
			want:   []time.Duration{50, 100, 200, 400, 500, 500},
		},
		{
			name:   "full jitter: the exponential delay",
			jitter: 0.999999999,
			want:   []time.Duration{99, 199, 399, 799, 999, 999},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackoff(100*time.Millisecond, time.Second)
			b.jitter = func() float64 { return tt.jitter }
			var got []time.Duration
			for range tt.want {
				got = append(got, b.next()/time.Millisecond)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays in ms (-want +got):\n%s", diff)
			}
			b.reset()
			if d := b.next() / time.Millisecond; d != tt.want[0] {
				t.Errorf("delay after reset = %vms, want %vms", d, tt.want[0])
			}
		})
	}
}

// testEnv is a watch environment for unit tests that never reach Consul.
func testEnv(cfg Config) *watchEnv {
	cfg = cfg.withDefaults()
	return &watchEnv{cfg: cfg, datacenter: "dc1", logger: slog.New(slog.DiscardHandler), stats: &stats{}}
}
