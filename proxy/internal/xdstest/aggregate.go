package xdstest

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// AggregateCluster is Envoy's aggregate cluster over children, in
// priority order, as the control plane sends it for failover to a
// cluster peer: cluster_type envoy.clusters.aggregate with an
// aggregatev3.ClusterConfig, lb_policy CLUSTER_PROVIDED, a 5s connect
// timeout.
func AggregateCluster(name string, children ...string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name: name,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name:        "envoy.clusters.aggregate",
			TypedConfig: Any(&aggregatev3.ClusterConfig{Clusters: children}),
		}},
		LbPolicy:       clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout: durationpb.New(5 * time.Second),
	}
}
