package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/weft-mesh/weft/catalog"
)

// loadAssignment lists every instance of a service with its health and
// weight, following Consul's rules: passing instances get their passing
// weight; warning instances their warning weight, or are unhealthy when it
// is 0; critical instances are unhealthy.
func loadAssignment(cluster string, eps []catalog.Endpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	if len(eps) == 0 {
		return cla
	}
	lbs := make([]*endpointv3.LbEndpoint, 0, len(eps))
	for _, e := range eps {
		health, weight := endpointHealth(e)
		lbs = append(lbs, lbEndpoint(e.Address, e.Port, health, weight))
	}
	cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}
	return cla
}

func endpointHealth(e catalog.Endpoint) (corev3.HealthStatus, int) {
	passing := atLeastOne(e.WeightPassing)
	switch e.Health {
	case catalog.HealthPassing:
		return corev3.HealthStatus_HEALTHY, passing
	case catalog.HealthWarning:
		if e.WeightWarning > 0 {
			return corev3.HealthStatus_HEALTHY, e.WeightWarning
		}
		return corev3.HealthStatus_UNHEALTHY, passing
	default:
		return corev3.HealthStatus_UNHEALTHY, passing
	}
}

// atLeastOne keeps weights valid for Envoy, which requires them to be ≥ 1.
func atLeastOne(w int) int {
	if w < 1 {
		return 1
	}
	return w
}
