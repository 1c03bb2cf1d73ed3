// Package discovery watches Consul and publishes its mesh state as
// immutable, versioned catalog.Snapshots.
//
// A Watcher runs one Consul blocking query per thing it watches, never one
// per proxy: the list of service names, one /v1/health/connect/<service>
// per service (all sidecars fronting it, with their health), and one per
// config-entry kind: service-defaults, proxy-defaults, service-intentions,
// service-resolver, service-splitter and service-router. Whenever a watch
// reports a change the Watcher rebuilds a whole snapshot from the latest
// answer of every watch, coalescing bursts of changes, and publishes it
// latest-wins.
//
// Consul failures never remove data: a failing watch keeps its last good
// answer and retries with backoff, so during an outage the last snapshot
// stays current and no new one is published.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/backoff"
)

// Watcher watches Consul and publishes catalog snapshots. Make one with
// New, start it with Run. Its other methods are safe to call from any
// goroutine, before, during and after Run.
type Watcher struct {
	cfg    Config
	logger *slog.Logger

	snapshots chan *catalog.Snapshot // capacity 1, latest wins
	current   atomic.Pointer[catalog.Snapshot]
	stats     stats
	started   atomic.Bool
}

// New returns a Watcher for cfg. It has no side effects: nothing talks to
// Consul before Run.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Watcher{
		cfg:       cfg,
		logger:    cfg.Logger.With("component", "discovery"),
		snapshots: make(chan *catalog.Snapshot, 1),
	}, nil
}

// Run watches Consul until ctx is done, then stops every watch, waits for
// all its goroutines to exit, closes the Snapshots channel and returns nil.
// When Config.Datacenter is empty it first reads the agent's datacenter,
// retrying until the agent answers. Run may be called once; a second call
// returns an error at once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("discovery: Watcher.Run called more than once")
	}
	defer close(w.snapshots)
	dc, ok := w.resolveDatacenter(ctx)
	if !ok {
		return nil
	}
	w.logger.Info("watching consul", "datacenter", dc)
	env := &watchEnv{client: w.cfg.Client, cfg: w.cfg, datacenter: dc, logger: w.logger, stats: &w.stats}
	coord := newCoordinator(env, w.publish)
	coord.state.aclDefaultPolicy = aclDefaultPolicy(ctx, w.cfg.Client)
	w.logger.Info("intentions default", "acl_default_policy", coord.state.aclDefaultPolicy)
	coord.run(ctx)
	return nil
}

// Snapshots returns the channel on which snapshots are published. It holds
// at most one snapshot, the latest: publishing replaces a snapshot the
// consumer has not taken yet, so a slow consumer never delays the watcher
// and never receives an outdated snapshot after a newer one. Versions
// received are increasing but may skip. The first snapshot is published
// once every watch has answered, never a partial one from startup. The
// channel is closed when Run returns.
//
// Snapshots and everything they point to are shared and must not be
// modified.
func (w *Watcher) Snapshots() <-chan *catalog.Snapshot { return w.snapshots }

// Current returns the latest published snapshot, or nil before the first.
func (w *Watcher) Current() *catalog.Snapshot { return w.current.Load() }

// Stats returns the watcher's counters.
func (w *Watcher) Stats() Stats { return w.stats.snapshot() }

// publish makes snap current and offers it on the channel, replacing an
// unread older one. It is only called from the coordinator goroutine, the
// channel's only sender, so the send after the drain never blocks.
func (w *Watcher) publish(snap *catalog.Snapshot) {
	w.current.Store(snap)
	w.stats.version.Store(snap.Version)
	select {
	case <-w.snapshots:
	default:
	}
	w.snapshots <- snap
}

// resolveDatacenter returns Config.Datacenter, else the agent's datacenter
// from /v1/agent/self, retrying with backoff; false when ctx is done first.
func (w *Watcher) resolveDatacenter(ctx context.Context) (string, bool) {
	if w.cfg.Datacenter != "" {
		return w.cfg.Datacenter, true
	}
	retry := w.cfg.retryPolicy()
	for failures := 1; ; failures++ {
		dc, err := agentDatacenter(ctx, w.cfg.Client)
		if err == nil {
			w.stats.recordSuccess()
			return dc, true
		}
		if ctx.Err() != nil {
			return "", false
		}
		w.stats.recordError()
		delay := retry.Delay(failures - 1)
		logFailure(w.logger.With("query", "agent/self"), failures, delay, err)
		if !backoff.Sleep(ctx, delay) {
			return "", false
		}
	}
}

func agentDatacenter(ctx context.Context, client *api.Client) (string, error) {
	var self struct{ Config struct{ Datacenter string } }
	if _, err := client.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("read agent datacenter: %w", err)
	}
	if self.Config.Datacenter == "" {
		return "", errors.New("read agent datacenter: /v1/agent/self has no Config.Datacenter")
	}
	return self.Config.Datacenter, nil
}
