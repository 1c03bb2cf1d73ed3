package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/catalog"
)

// priorityGroup is the instances of one target of a load assignment.
// onlyPassing makes instances with a warning check unhealthy.
type priorityGroup struct {
	endpoints   []catalog.Endpoint
	onlyPassing bool
}

// loadAssignment lists the instances of each group at its own priority,
// in order: 0 for the primary target, then one per failover target that
// has instances, with no gaps. Each endpoint names its Consul instance
// (withInstance). Health and weight follow Consul's rules:
// passing instances get their passing weight; warning instances their
// warning weight, or are unhealthy when it is 0 (or the group takes only
// passing instances); critical instances are unhealthy.
func loadAssignment(cluster string, groups ...priorityGroup) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	for _, g := range groups {
		if len(g.endpoints) == 0 {
			continue
		}
		lbs := make([]*endpointv3.LbEndpoint, 0, len(g.endpoints))
		for _, e := range g.endpoints {
			health, weight := endpointHealth(e, g.onlyPassing)
			lbs = append(lbs, withInstance(lbEndpoint(e.Address, e.Port, health, weight), e.ProxyID))
		}
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{LbEndpoints: lbs, Priority: uint32(len(cla.Endpoints))})
	}
	return cla
}

// resolutionLoadAssignment is the load assignment of a resolved target:
// its instances, then those of each failover target.
func (t *translator) resolutionLoadAssignment(r *resolution) *endpointv3.ClusterLoadAssignment {
	groups := []priorityGroup{{t.endpointsOf(r), r.subset.OnlyPassing}}
	for _, f := range r.failover {
		if f.target.peer != "" {
			continue // reached through the aggregate cluster (aggregate.go)
		}
		groups = append(groups, priorityGroup{t.endpointsOf(f), f.subset.OnlyPassing})
	}
	return loadAssignment(r.target.clusterName(), groups...)
}

func endpointHealth(e catalog.Endpoint, onlyPassing bool) (corev3.HealthStatus, int) {
	passing := atLeastOne(e.WeightPassing)
	switch e.Health {
	case catalog.HealthPassing:
		return corev3.HealthStatus_HEALTHY, passing
	case catalog.HealthWarning:
		if e.WeightWarning > 0 && !onlyPassing {
			return corev3.HealthStatus_HEALTHY, atLeastOne(e.WeightWarning)
		}
		return corev3.HealthStatus_UNHEALTHY, passing
	default:
		return corev3.HealthStatus_UNHEALTHY, passing
	}
}

// maxWeight bounds an endpoint's weight so that the weights of a locality
// cannot overflow the uint32 sum Envoy requires (4096 instances at most
// weight each).
const maxWeight = 1 << 20

// atLeastOne keeps weights valid for Envoy, which requires them to be ≥ 1,
// and at most maxWeight.
func atLeastOne(w int) int {
	return min(max(w, 1), maxWeight)
}

// The EDS endpoint metadata weft-proxy reads (docs/xds.md):
// filter_metadata["weft"].instance_id is the Consul service ID of the
// instance behind the endpoint (its sidecar's, or a gateway's), which
// the proxy's spans report as weft.upstream.instance_id.
const (
	endpointMetadata = "weft"
	instanceIDField  = "instance_id"
)

// withInstance names the Consul instance id behind e in its metadata;
// nothing when id is empty.
func withInstance(e *endpointv3.LbEndpoint, id string) *endpointv3.LbEndpoint {
	if id == "" {
		return e
	}
	e.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		endpointMetadata: {Fields: map[string]*structpb.Value{instanceIDField: structpb.NewStringValue(id)}},
	}}
	return e
}
