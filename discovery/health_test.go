package discovery

import (
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

func TestAggregateHealth(t *testing.T) {
	check := func(status string) *api.HealthCheck { return &api.HealthCheck{Status: status} }
	tests := []struct {
		name   string
		checks api.HealthChecks
		want   catalog.Health
	}{
		{"no checks", nil, catalog.HealthPassing},
		{"all passing", api.HealthChecks{check(api.HealthPassing), check(api.HealthPassing)}, catalog.HealthPassing},
		{"one warning", api.HealthChecks{check(api.HealthPassing), check(api.HealthWarning)}, catalog.HealthWarning},
		{"critical beats warning", api.HealthChecks{check(api.HealthWarning), check(api.HealthCritical), check(api.HealthPassing)}, catalog.HealthCritical},
		{"maintenance is critical", api.HealthChecks{check(api.HealthMaint)}, catalog.HealthCritical},
		{"unknown status is critical", api.HealthChecks{check("bogus")}, catalog.HealthCritical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := aggregateHealth(tt.checks); got != tt.want {
				t.Errorf("aggregateHealth = %v, want %v", got, tt.want)
			}
		})
	}
}
