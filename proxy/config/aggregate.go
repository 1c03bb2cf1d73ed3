package config

import (
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"

	"github.com/weft-mesh/weft/proxy/xds"
)

// AggregateClusterType is the cluster_type name of Envoy's aggregate
// cluster, whose typed_config is an aggregatev3.ClusterConfig.
const AggregateClusterType = "envoy.clusters.aggregate"

// isAggregate reports whether c is an aggregate cluster.
func isAggregate(c *clusterv3.Cluster) bool {
	return c.GetClusterType().GetName() == AggregateClusterType
}

// compileAggregateCluster compiles an aggregate cluster: its child
// clusters in priority order. The children's own settings (TLS, limits,
// outlier detection, protocol) apply to the requests sent to them, so the
// aggregate takes none of these; common_lb_config.healthy_panic_threshold
// decides whether it balances over unhealthy hosts when no child has an
// available one. Whether the children exist is checked against the whole
// configuration (checkAggregates).
func compileAggregateCluster(c *clusterv3.Cluster) (*Cluster, error) {
	if err := onlyFields(c, "name", "cluster_type", "lb_policy", "connect_timeout", "alt_stat_name", "common_lb_config"); err != nil {
		return nil, fmt.Errorf("aggregate cluster: %w (the child clusters' own apply)", err)
	}
	if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
		return nil, fmt.Errorf("aggregate cluster: lb_policy %s, want CLUSTER_PROVIDED", c.GetLbPolicy())
	}
	children, err := aggregateChildren(c)
	if err != nil {
		return nil, fmt.Errorf("aggregate cluster: %w", err)
	}
	threshold, err := compilePanicThreshold(c.GetCommonLbConfig())
	if err != nil {
		return nil, fmt.Errorf("aggregate cluster: common_lb_config: %w", err)
	}
	out := &Cluster{Name: c.GetName(), ConnectTimeout: DefaultConnectTimeout, Aggregate: children,
		LB: LB{Policy: RoundRobin, PanicThreshold: threshold}, Limits: DefaultLimits()}
	if d := c.GetConnectTimeout(); d != nil {
		out.ConnectTimeout = d.AsDuration()
	}
	return out, nil
}

// aggregateChildren decodes the ClusterConfig of aggregate cluster c:
// at least one child, none twice, not c itself.
func aggregateChildren(c *clusterv3.Cluster) ([]string, error) {
	typed := c.GetClusterType().GetTypedConfig()
	if typed == nil {
		return nil, fmt.Errorf("cluster_type.typed_config is missing")
	}
	var cfg aggregatev3.ClusterConfig
	if !typed.MessageIs(&cfg) {
		return nil, fmt.Errorf("cluster_type.typed_config is %s, want %s", typed.GetTypeUrl(), cfg.ProtoReflect().Descriptor().FullName())
	}
	if err := typed.UnmarshalTo(&cfg); err != nil {
		return nil, fmt.Errorf("cluster_type.typed_config: undecodable: %w", err)
	}
	children := cfg.GetClusters()
	if len(children) == 0 {
		return nil, fmt.Errorf("clusters is empty")
	}
	for i, name := range children {
		switch {
		case name == c.GetName():
			return nil, fmt.Errorf("clusters[%d] %q is the aggregate cluster itself", i, name)
		case slices.Index(children, name) < i:
			return nil, fmt.Errorf("clusters[%d] %q is listed twice", i, name)
		}
	}
	return slices.Clone(children), nil
}

// checkAggregates checks the children of the aggregate clusters among
// clusters against the configuration's Cluster resources: each must be
// one of them, neither an aggregate cluster itself nor an ORIGINAL_DST
// cluster. Errors name the aggregate, in name order.
func checkAggregates(clusters map[string]*Cluster, resources xds.Resources) []error {
	var errs namedErrors
	for name, c := range clusters {
		for i, child := range c.Aggregate {
			msg, ok := resources.Items[child].(*clusterv3.Cluster)
			switch {
			case !ok:
				errs.add(name, i, fmt.Errorf("cluster %q: aggregate cluster: clusters[%d] %q is not a cluster of this configuration", name, i, child))
			case isAggregate(msg):
				errs.add(name, i, fmt.Errorf("cluster %q: aggregate cluster: clusters[%d] %q is an aggregate cluster too; nested aggregate clusters are not supported", name, i, child))
			case msg.GetType() == clusterv3.Cluster_ORIGINAL_DST:
				errs.add(name, i, fmt.Errorf("cluster %q: aggregate cluster: clusters[%d] %q is an ORIGINAL_DST cluster, which has no hosts to choose", name, i, child))
			}
		}
	}
	return errs.sorted()
}
