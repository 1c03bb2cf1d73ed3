package discovery

import (
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// guardRemoval is the endpoint panic guard's Consul half. When Consul's
// answer next removes more than RemovalShare percent of service name's
// instances whose checks were not failing, the instances vanished
// rather than failed: the typical sign of an agent restart or of
// anti-entropy churn, after which they come back. The removal is then
// held (hold.go) for RemovalGrace, counted and logged. Removals of
// instances that were critical apply at once, as do health changes:
// Consul saying an instance fails is news to act on, not a blip.
//
// It is called before next is stored, with the service's current result.
func (c *coordinator) guardRemoval(name string, next serviceResult, now time.Time) {
	grace := c.env.cfg.RemovalGrace
	if grace <= 0 || c.held(name) {
		return
	}
	before := c.state.services[name].endpoints
	vanished := removalToHold(before, next.endpoints, c.env.cfg.RemovalShare)
	if vanished == 0 {
		return
	}
	c.holdService(name, now.Add(grace))
	c.env.stats.removalsHeld.Add(1)
	c.env.logger.Warn("Consul removed most of a service's instances without their checks failing; holding the removal",
		"service", name, "removed", vanished, "instances", len(before), "share", c.env.cfg.RemovalShare, "grace", grace)
}

// removalToHold returns how many instances going from before to after
// removes without their checks failing, when that is more than share
// percent of before; else 0.
func removalToHold(before, after []catalog.Endpoint, share float64) int {
	vanished := vanishedHealthy(before, after)
	if 100*float64(vanished) <= share*float64(len(before)) {
		return 0
	}
	return vanished
}

// vanishedHealthy counts the instances of before, not critical, that
// after no longer lists.
func vanishedHealthy(before, after []catalog.Endpoint) int {
	listed := make(map[string]bool, len(after))
	for _, e := range after {
		listed[endpointKey(e)] = true
	}
	n := 0
	for _, e := range before {
		if e.Health != catalog.HealthCritical && !listed[endpointKey(e)] {
			n++
		}
	}
	return n
}
