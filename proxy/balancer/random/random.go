// Package random implements Envoy's RANDOM load-balancing policy: each
// pick is an independent weighted random draw.
package random

import "github.com/weft-mesh/weft/proxy/balancer"

type picker struct {
	endpoints []balancer.Endpoint
	draw      balancer.Cumulative
}

var _ balancer.Picker = (*picker)(nil)

// New is a balancer.Builder.
func New(endpoints []balancer.Endpoint) balancer.Picker {
	if len(endpoints) == 0 {
		return balancer.Empty{}
	}
	return &picker{endpoints: endpoints, draw: balancer.NewCumulative(endpoints)}
}

// Pick draws an endpoint at random in proportion to its weight.
func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{Endpoint: &p.endpoints[p.draw.Draw()]}, nil
}
