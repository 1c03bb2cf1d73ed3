// Package leastrequest implements Envoy's LEAST_REQUEST policy as
// power-of-d choices: each pick draws choice_count endpoints at random
// (weighted) and takes the one with the fewest requests in flight.
// A cluster with no more endpoints than choice_count is scanned whole
// instead (Envoy's FULL_SCAN selection method): drawing with replacement
// would send a quarter of the requests of a two-host cluster to the
// busier host whatever its load.
//
// The in-flight counts are the endpoints' Active counters, owned by the
// cluster so that they survive picker rebuilds; Pick only reads them
// (grpc-go's balancer/leastrequest keeps them the same way).
package leastrequest

import "github.com/weft-mesh/weft/proxy/balancer"

// DefaultChoiceCount is Envoy's least_request_lb_config.choice_count default.
const DefaultChoiceCount = 2

type picker struct {
	endpoints []balancer.Endpoint
	draw      balancer.Cumulative
	choices   int
}

var _ balancer.Picker = (*picker)(nil)

// Builder returns a balancer.Builder drawing choiceCount candidates per
// pick (DefaultChoiceCount when 0).
func Builder(choiceCount uint32) balancer.Builder {
	if choiceCount == 0 {
		choiceCount = DefaultChoiceCount
	}
	return func(endpoints []balancer.Endpoint) balancer.Picker {
		if len(endpoints) == 0 {
			return balancer.Empty{}
		}
		return &picker{endpoints: endpoints, draw: balancer.NewCumulative(endpoints), choices: int(choiceCount)}
	}
}

// Pick returns the least loaded of the drawn candidates; the first drawn
// wins ties.
func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	best := p.draw.Draw()
	switch n := len(p.endpoints); {
	case n == 1:
		return balancer.PickResult{Endpoint: &p.endpoints[best]}, nil
	case n <= p.choices:
		return balancer.PickResult{Endpoint: &p.endpoints[p.scan(best)]}, nil
	}
	bestLoad := active(&p.endpoints[best])
	for range p.choices - 1 {
		i := p.draw.Draw()
		if load := active(&p.endpoints[i]); load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return balancer.PickResult{Endpoint: &p.endpoints[best]}, nil
}

// scan returns the least loaded endpoint, looking at every one from
// start on, so that ties go to a random (weighted) endpoint.
func (p *picker) scan(start int) int {
	best, bestLoad := start, active(&p.endpoints[start])
	for k := 1; k < len(p.endpoints); k++ {
		i := (start + k) % len(p.endpoints)
		if load := active(&p.endpoints[i]); load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best
}

func active(e *balancer.Endpoint) int64 {
	if e.Active == nil {
		return 0
	}
	return e.Active.Load()
}
