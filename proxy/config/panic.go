package config

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// DefaultPanicThreshold is Envoy's healthy_panic_threshold when
// common_lb_config leaves it unset, in percent.
const DefaultPanicThreshold = 50

// compilePanicThreshold compiles common_lb_config, of which only
// healthy_panic_threshold is supported.
func compilePanicThreshold(c *clusterv3.Cluster_CommonLbConfig) (float64, error) {
	if c == nil {
		return DefaultPanicThreshold, nil
	}
	if err := onlyFields(c, "healthy_panic_threshold"); err != nil {
		return 0, err
	}
	p := c.GetHealthyPanicThreshold()
	if p == nil {
		return DefaultPanicThreshold, nil
	}
	if v := p.GetValue(); v < 0 || v > 100 {
		return 0, fmt.Errorf("healthy_panic_threshold %v is not a percentage in [0, 100]", v)
	}
	return p.GetValue(), nil
}
