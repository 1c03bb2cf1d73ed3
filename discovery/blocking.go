package discovery

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/backoff"
)

// fetchFunc performs one Consul request with q and returns its decoded
// result and the response's index (X-Consul-Index).
type fetchFunc[T any] func(q *api.QueryOptions) (result T, index uint64, err error)

// deliverFunc hands a changed result to its consumer. It returns false when
// ctx is done before the result was taken, which ends the query loop.
type deliverFunc[T any] func(ctx context.Context, result T) bool

// runBlocking repeats one Consul blocking query until ctx is done, calling
// deliver with the first result and with every result whose index changed.
// It runs on the calling goroutine.
//
// It follows Consul's rules for blocking queries: the next query waits on
// the last index; an index that goes backwards resets the wait to 0 (a full
// read); an index of 0 from Consul is replaced by 1 so the query keeps
// blocking. A failed request is retried after a jittered exponential
// backoff that resets on success, with index 0, since the agent may have
// restarted with lower indexes. A failure never reaches deliver, so the
// consumer keeps the last good result.
func runBlocking[T any](ctx context.Context, env *watchEnv, name string, fetch fetchFunc[T], deliver deliverFunc[T]) {
	logger := env.logger.With("query", name)
	retry := env.cfg.retryPolicy()
	failures := 0
	var index uint64
	for ctx.Err() == nil {
		q := &api.QueryOptions{Datacenter: env.datacenter, WaitIndex: index, WaitTime: env.cfg.QueryWait}
		result, last, err := fetch(q.WithContext(ctx))
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			env.stats.recordError()
			delay := retry.Delay(failures)
			failures++
			logFailure(logger, failures, delay, err)
			index = 0
			if !backoff.Sleep(ctx, delay) {
				return
			}
			continue
		}
		env.stats.recordSuccess()
		if failures > 0 {
			logger.Info("consul query recovered", "failures", failures)
			failures = 0
		}
		if index != 0 && last == index {
			continue // the wait timed out without a change
		}
		index = nextIndex(index, last)
		if !deliver(ctx, result) {
			return
		}
	}
}

// nextIndex is the index to wait on after a response with index last to a
// query that waited on prev.
func nextIndex(prev, last uint64) uint64 {
	switch {
	case last < prev:
		return 0
	case last == 0:
		return 1
	default:
		return last
	}
}

// logFailure logs the first failure of a run of failures as a warning and
// the rest at debug level, so an outage does not flood the log.
func logFailure(logger *slog.Logger, failures int, delay time.Duration, err error) {
	level := slog.LevelDebug
	if failures == 1 {
		level = slog.LevelWarn
	}
	logger.Log(context.Background(), level, "consul query failed; keeping the last good result",
		"error", err, "failures", failures, "retry_in", delay)
}
