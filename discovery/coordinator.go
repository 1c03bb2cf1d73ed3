package discovery

import (
	"context"
	"sync"
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// event is a change sent by a watch goroutine and run on the coordinator
// goroutine, which alone owns the state the change applies to.
type event func(ctx context.Context)

// coordinator runs the watches of one Watcher.Run, applies their answers to
// its state on a single goroutine, and publishes a new snapshot once
// changes have settled (debounce).
type coordinator struct {
	env     *watchEnv
	publish func(*catalog.Snapshot) // must not block
	events  chan event
	wg      sync.WaitGroup // every watch goroutine

	state   *state
	watches map[string]*serviceWatch // running connect watches by service name
	// awaiting are the names of running connect watches that have not
	// answered yet. Held services stay in the state without a watch, so
	// the state cannot tell.
	awaiting map[string]bool
	nextGen  uint64

	last       *catalog.Snapshot // last published, nil before the first
	dirty      bool              // state changed since last was built
	dirtySince time.Time         // first unpublished change
	timer      *time.Timer       // fires when the debounce window closes

	holds       map[string]*serviceHold // services whose removals are held
	holdTimer   *time.Timer             // fires when the first hold ends
	resyncUntil time.Time               // end of the current resync's holds
	// resyncBefore is the state when the current resync began, and
	// resyncEntries the config-entry answers to apply when it ends, by
	// kind (entryhold.go); both nil outside a resync.
	resyncBefore  *state
	resyncEntries map[string]func(*state)
}

// serviceWatch is one running /v1/health/connect/<service> watch. gen tells
// its answers from those of an earlier watch of the same name.
type serviceWatch struct {
	gen    uint64
	cancel context.CancelFunc
}

func newCoordinator(env *watchEnv, publish func(*catalog.Snapshot)) *coordinator {
	return &coordinator{
		env:      env,
		publish:  publish,
		events:   make(chan event, 64),
		state:    newState(),
		watches:  make(map[string]*serviceWatch),
		awaiting: make(map[string]bool),
		holds:    make(map[string]*serviceHold),
	}
}

// run starts the watches and applies their events until ctx is done, then
// stops them and waits for their goroutines to exit.
func (c *coordinator) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer c.wg.Wait()
	defer cancel()
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	defer c.timer.Stop()
	c.holdTimer = time.NewTimer(time.Hour)
	c.holdTimer.Stop()
	defer c.holdTimer.Stop()

	c.spawn(ctx, c.watchServiceNames)
	c.spawn(ctx, c.watchServiceDefaults)
	c.spawn(ctx, c.watchProxyDefaults)
	c.spawn(ctx, c.watchMesh)
	c.spawn(ctx, c.watchIntentions)
	c.spawn(ctx, c.watchServiceResolvers)
	c.spawn(ctx, c.watchServiceSplitters)
	c.spawn(ctx, c.watchServiceRouters)
	c.spawn(ctx, c.watchExportedServices)
	c.spawn(ctx, c.watchPeerings)
	c.spawn(ctx, c.watchGatewayNames)
	c.spawn(ctx, c.watchIngressGateways)
	c.spawn(ctx, c.watchAPIGatewayEntries)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.events:
			ev(ctx)
			c.changed(time.Now())
		case now := <-c.timer.C:
			c.syncImports(ctx)
			c.syncTerminating(ctx)
			c.flush(now)
		case now := <-c.holdTimer.C:
			c.endHolds(now)
			c.endEntryHold(now)
			c.changed(now)
		}
	}
}

// spawn runs watch on a new goroutine owned by the coordinator.
func (c *coordinator) spawn(ctx context.Context, watch func(context.Context)) {
	c.env.stats.watches.Add(1)
	c.wg.Go(func() {
		defer c.env.stats.watches.Add(-1)
		watch(ctx)
	})
}

// send hands ev to the coordinator goroutine; false if ctx is done first.
// Called from watch goroutines.
func (c *coordinator) send(ctx context.Context, ev event) bool {
	select {
	case c.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// setServiceNames starts a connect watch for every new service name and
// stops those of names that are gone, dropping their data, unless a hold
// keeps it. reset says Consul's catalog index went backwards.
func (c *coordinator) setServiceNames(ctx context.Context, names []string, reset bool) {
	now := time.Now()
	if reset {
		c.startResync(now)
	}
	want := make(map[string]bool, len(names))
	for _, name := range names {
		want[name] = true
	}
	for name, w := range c.watches {
		if !want[name] {
			w.cancel()
			delete(c.watches, name)
			delete(c.awaiting, name)
			c.guardRemoval(name, serviceResult{}, now)
			if c.held(name) {
				continue
			}
			c.state.deleteService(name)
		}
	}
	for _, name := range names {
		if c.watches[name] == nil {
			c.startServiceWatch(ctx, name)
		}
	}
	c.state.catalogKnown = true
}

func (c *coordinator) startServiceWatch(ctx context.Context, name string) {
	c.nextGen++
	gen := c.nextGen
	ctx, cancel := context.WithCancel(ctx)
	c.watches[name] = &serviceWatch{gen: gen, cancel: cancel}
	c.awaiting[name] = true
	if h := c.holds[name]; h != nil {
		h.raw = nil // the stopped watch's answers are not the new one's
	}
	c.spawn(ctx, func(ctx context.Context) { c.watchService(ctx, name, gen) })
}

// setService stores the answer of a connect watch, unless that watch has
// been stopped since; reset says Consul's index went backwards.
func (c *coordinator) setService(name string, gen uint64, r serviceResult, reset bool) {
	if w := c.watches[name]; w == nil || w.gen != gen {
		return
	}
	delete(c.awaiting, name)
	now := time.Now()
	if reset {
		c.startResync(now)
	}
	c.guardRemoval(name, r, now)
	c.state.setService(name, c.heldResult(name, r))
}

// pending counts the watches that have not answered yet.
func (c *coordinator) pending() int {
	return len(c.awaiting) + c.state.unanswered()
}

// changed notes a state change at now and (re)arms the debounce timer: it
// fires Debounce after the latest change, but no later than DebounceMax
// after the first unpublished one.
func (c *coordinator) changed(now time.Time) {
	c.env.stats.pending.Store(int64(c.pending()))
	if !c.dirty {
		c.dirty, c.dirtySince = true, now
	}
	deadline := c.dirtySince.Add(c.env.cfg.DebounceMax)
	c.timer.Reset(min(c.env.cfg.Debounce, deadline.Sub(now)))
}

// flush publishes a snapshot of the state when the debounce window closes.
//
// The first snapshot waits until every watch has answered. Later ones wait
// for newly started watches' first answers too, but only until DebounceMax
// after the first unpublished change, so one failing watch cannot hold
// back every other change.
func (c *coordinator) flush(now time.Time) {
	if pending := c.pending(); pending > 0 {
		if c.last == nil {
			c.dirty = false // the answer still missing will arrive as an event
			return
		}
		if deadline := c.dirtySince.Add(c.env.cfg.DebounceMax); now.Before(deadline) {
			c.timer.Reset(deadline.Sub(now))
			return
		}
		c.env.logger.Debug("publishing while watches have not answered", "pending", pending)
	}
	c.dirty = false
	c.publishState()
}

// publishState publishes a snapshot of the state, unless it equals the
// last one published.
func (c *coordinator) publishState() {
	version := uint64(1)
	if c.last != nil {
		version = c.last.Version + 1
	}
	snap := c.state.build(c.env.datacenter, version)
	snap.DNSDomains = c.env.dnsDomains
	if sameContent(c.last, snap) {
		return
	}
	if c.last == nil {
		c.env.logger.Info("first catalog snapshot ready", "services", len(c.watches), "proxies", len(snap.Proxies))
	}
	c.last = snap
	c.publish(snap)
	c.env.logger.Debug("published catalog snapshot", "version", snap.Version,
		"proxies", len(snap.Proxies), "services", len(snap.Endpoints))
}
