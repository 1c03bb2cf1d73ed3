package discovery

import (
	"time"
)

// startResync protects the mesh from a Consul that comes back without its
// state (RELIABILITY #2). When the catalog's index goes backwards, Consul
// lost its data (a dev agent or a server restored from an old snapshot),
// and its agents re-register their services only over the next
// anti-entropy rounds. Every service known then is held (hold.go) for
// ResyncGrace, and so are the config entries (entryhold.go), unless there
// is nothing to protect, the protection is off or a resync is already
// being held.
func (c *coordinator) startResync(now time.Time) {
	grace := c.env.cfg.ResyncGrace
	if grace <= 0 || len(c.state.services) == 0 || now.Before(c.resyncUntil) {
		return
	}
	c.resyncUntil = now.Add(grace)
	before := *c.state // its entry fields are replaced, never modified
	c.resyncBefore, c.resyncEntries = &before, map[string]func(*state){}
	for name := range c.state.services {
		c.holdService(name, c.resyncUntil)
	}
	c.env.logger.Warn("Consul's catalog index went backwards: it lost its state; keeping services and instances it no longer lists until its agents re-register them",
		"services", len(c.state.services), "grace", grace)
}
