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
	"slices"
	"strings"
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
	agent, ok := w.resolveAgent(ctx)
	if !ok {
		return nil
	}
	w.logger.Info("watching consul", "datacenter", agent.datacenter, "dns_domains", agent.dnsDomains)
	env := &watchEnv{client: w.cfg.Client, cfg: w.cfg, datacenter: agent.datacenter, dnsDomains: agent.dnsDomains, logger: w.logger, stats: &w.stats}
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

// agentInfo is what the watcher reads from the Consul agent once.
type agentInfo struct {
	datacenter string
	dnsDomains []string // domain and alt_domain, lower case, no trailing dot
}

// resolveAgent reads the agent's datacenter (Config.Datacenter, when set,
// instead) and DNS domains from /v1/agent/self, retrying with backoff;
// false when ctx is done first.
func (w *Watcher) resolveAgent(ctx context.Context) (agentInfo, bool) {
	retry := w.cfg.retryPolicy()
	for failures := 1; ; failures++ {
		a, err := readAgent(ctx, w.cfg.Client)
		if err == nil {
			w.stats.recordSuccess()
			if w.cfg.Datacenter != "" {
				a.datacenter = w.cfg.Datacenter
			}
			return a, true
		}
		if ctx.Err() != nil {
			return agentInfo{}, false
		}
		w.stats.recordError()
		delay := retry.Delay(failures - 1)
		logFailure(w.logger.With("query", "agent/self"), failures, delay, err)
		if !backoff.Sleep(ctx, delay) {
			return agentInfo{}, false
		}
	}
}

// readAgent reads /v1/agent/self: Config.Datacenter, and the DNS domains
// of DebugConfig, which names an ingress gateway's certificate carries.
func readAgent(ctx context.Context, client *api.Client) (agentInfo, error) {
	var self struct {
		Config      struct{ Datacenter string }
		DebugConfig struct{ DNSDomain, DNSAltDomain string }
	}
	if _, err := client.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return agentInfo{}, fmt.Errorf("read agent datacenter: %w", err)
	}
	if self.Config.Datacenter == "" {
		return agentInfo{}, errors.New("read agent datacenter: /v1/agent/self has no Config.Datacenter")
	}
	a := agentInfo{datacenter: self.Config.Datacenter}
	for _, d := range []string{self.DebugConfig.DNSDomain, self.DebugConfig.DNSAltDomain} {
		if d = strings.ToLower(strings.TrimSuffix(d, ".")); d != "" && !slices.Contains(a.dnsDomains, d) {
			a.dnsDomains = append(a.dnsDomains, d)
		}
	}
	return a, nil
}
