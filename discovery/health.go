package discovery

import (
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// aggregateHealth folds an instance's checks (node and service checks, as
// /v1/health/connect returns them) into one state the way Consul does: any
// critical check makes it critical, else any warning makes it warning, else
// it is passing. No checks at all is passing.
//
// Maintenance mode (a critical check in Consul's catalog) and any status
// Consul does not define count as critical, so an unknown state never
// attracts traffic.
func aggregateHealth(checks api.HealthChecks) catalog.Health {
	health := catalog.HealthPassing
	for _, c := range checks {
		switch c.Status {
		case api.HealthPassing:
		case api.HealthWarning:
			health = max(health, catalog.HealthWarning)
		default:
			return catalog.HealthCritical
		}
	}
	return health
}
