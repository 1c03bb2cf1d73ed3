package config

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// compileLoadAssignment compiles an EDS resource (endpoint hosts must be
// IP addresses, as Envoy requires for EDS).
func compileLoadAssignment(cla *endpointv3.ClusterLoadAssignment) ([]Endpoint, error) {
	return compileEndpoints(cla, true)
}

func compileEndpoints(cla *endpointv3.ClusterLoadAssignment, requireIP bool) ([]Endpoint, error) {
	out := []Endpoint{}
	for i, group := range cla.GetEndpoints() {
		for j, lbe := range group.GetLbEndpoints() {
			e, err := compileEndpoint(lbe, group.GetPriority(), requireIP)
			if err != nil {
				return nil, fmt.Errorf("locality %d: endpoint %d: %w", i, j, err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func compileEndpoint(lbe *endpointv3.LbEndpoint, priority uint32, requireIP bool) (Endpoint, error) {
	if lbe.GetEndpoint() == nil {
		return Endpoint{}, fmt.Errorf("named endpoints are not supported")
	}
	addr, err := socketAddress(lbe.GetEndpoint().GetAddress(), requireIP)
	if err != nil {
		return Endpoint{}, err
	}
	weight := uint32(1)
	if w := lbe.GetLoadBalancingWeight(); w != nil {
		weight = max(w.GetValue(), 1)
	}
	return Endpoint{
		Address:    addr,
		Healthy:    receivesTraffic(lbe.GetHealthStatus()),
		Weight:     weight,
		Priority:   priority,
		InstanceID: instanceID(lbe),
	}, nil
}

// The control plane names each EDS endpoint's Consul instance in its
// metadata: filter_metadata[EndpointMetadata].fields[InstanceIDField], a
// string (docs/xds.md). Other metadata is ignored. Clusters and listeners
// carry fields under the same key (metadata.go).
const (
	EndpointMetadata = "weft"
	InstanceIDField  = "instance_id"
)

// instanceID is the endpoint's Consul instance ID, "" when the control
// plane sent none.
func instanceID(lbe *endpointv3.LbEndpoint) string {
	md := lbe.GetMetadata().GetFilterMetadata()[EndpointMetadata]
	return md.GetFields()[InstanceIDField].GetStringValue()
}

// receivesTraffic: only HEALTHY and UNKNOWN endpoints get traffic.
func receivesTraffic(h corev3.HealthStatus) bool {
	return h == corev3.HealthStatus_HEALTHY || h == corev3.HealthStatus_UNKNOWN
}
