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

// TestRunBlockingBackoff: failed requests are retried after growing,
// equal-jittered delays within BackoffBase and BackoffMax, and the delays
// start over after a success.
func TestRunBlockingBackoff(t *testing.T) {
	const base = time.Microsecond
	errConsul := errors.New("connection refused")
	script := []error{errConsul, errConsul, errConsul, nil, errConsul}
	env := testEnv(Config{QueryWait: time.Minute, BackoffBase: base, BackoffMax: 3 * base})
	failures := &failureLog{}
	env.logger = slog.New(failures)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	fetch := func(*api.QueryOptions) (int, uint64, error) {
		if calls == len(script) {
			cancel()
			return 0, 0, ctx.Err()
		}
		calls++
		return calls, uint64(calls), script[calls-1]
	}
	runBlocking(ctx, env, "test", fetch, func(context.Context, int) bool { return true })

	// The exponential delay before each retry: base·2ⁿ capped at 3·base,
	// back to base after the success.
	caps := []time.Duration{base, 2 * base, 3 * base, base}
	if len(failures.delays) != len(caps) {
		t.Fatalf("logged %d failures, want %d", len(failures.delays), len(caps))
	}
	for i, d := range failures.delays {
		if d < caps[i]/2 || d > caps[i] {
			t.Errorf("retry %d waited %v, want within [%v, %v]", i+1, d, caps[i]/2, caps[i])
		}
	}
}

// failureLog records the retry_in of every "consul query failed" record.
type failureLog struct {
	delays []time.Duration
}

func (*failureLog) Enabled(context.Context, slog.Level) bool { return true }
func (f *failureLog) WithAttrs([]slog.Attr) slog.Handler     { return f }
func (f *failureLog) WithGroup(string) slog.Handler          { return f }
func (f *failureLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			f.delays = append(f.delays, a.Value.Duration())
		}
		return true
	})
	return nil
}

// testEnv is a watch environment for unit tests that never reach Consul.
func testEnv(cfg Config) *watchEnv {
	cfg = cfg.withDefaults()
	return &watchEnv{cfg: cfg, datacenter: "dc1", logger: slog.New(slog.DiscardHandler), stats: &stats{}}
}
