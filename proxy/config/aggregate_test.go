package config

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/xds"
)

// The aggregate of the tests: the local service's cluster, then a
// peer's, as the control plane sends them for failover to a peer.
const (
	aggName = "api.default.dc1.internal"
	primary = "failover-target~0~api"
	peer    = "failover-target~1~api"
)

// peerChild is the peer's child cluster: TLS of its own (other SNI,
// SAN), and its own limits.
func peerChild() *clusterv3.Cluster {
	c := xdstest.WithClusterTLS(xdstest.EDSCluster(peer), xdstest.UpstreamTLS("api.default.default.dc2.external.peer", "spiffe://peer.consul/ns/default/dc/dc2/svc/api"))
	return xdstest.WithCircuitBreakers(c, xdstest.Thresholds{MaxRequests: 7})
}

func TestCompileAggregateCluster(t *testing.T) {
	agg := xdstest.AggregateCluster(aggName, primary, peer)
	agg.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: 30}}
	agg.AltStatName = aggName
	rt, err := Compile(state(
		xdstest.TCPListener("api:127.0.0.1:9191", "127.0.0.1:9191", aggName),
		agg, xdstest.EDSCluster(primary), peerChild(),
		xdstest.LoadAssignment(primary, xdstest.Endpoint("10.0.0.1:20000")),
		xdstest.LoadAssignment(peer, xdstest.Endpoint("10.1.0.1:8443")),
	))
	if err != nil {
		t.Fatal(err)
	}
	want := &Cluster{Name: aggName, ConnectTimeout: 5 * time.Second, Aggregate: []string{primary, peer},
		LB: LB{Policy: RoundRobin, PanicThreshold: 30}, Limits: DefaultLimits()}
	if diff := cmp.Diff(want, rt.Clusters[aggName]); diff != "" {
		t.Errorf("aggregate cluster (-want +got):\n%s", diff)
	}
	if got := rt.Clusters[peer]; got.TLS == nil || got.Limits.MaxRequests != 7 {
		t.Errorf("peer child = %+v, want its own TLS and max_requests 7", got)
	}
	// The aggregate subscribes to nothing itself: its children do.
	if diff := cmp.Diff(xds.Subscriptions{Endpoints: []string{primary, peer}, Secrets: []string{"weft-roots"}}, rt.Subscriptions); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
}

// TestCompileRejectsBadAggregateClusters: each refusal names the cluster
// and the field, and NACKs the whole update.
func TestCompileRejectsBadAggregateClusters(t *testing.T) {
	agg := func(children ...string) *clusterv3.Cluster { return xdstest.AggregateCluster(aggName, children...) }
	children := []proto.Message{xdstest.EDSCluster(primary), xdstest.EDSCluster(peer)}
	tests := []struct {
		name    string
		in      []proto.Message
		wantErr string
	}{
		{
			name:    "another custom cluster type",
			in:      []proto.Message{withClusterType(agg(primary), "envoy.clusters.dynamic_forward_proxy")},
			wantErr: `cluster "api.default.dc1.internal": cluster_type "envoy.clusters.dynamic_forward_proxy" is not supported (only envoy.clusters.aggregate)`,
		},
		{
			name:    "empty list",
			in:      []proto.Message{agg()},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: clusters is empty`,
		},
		{
			name:    "naming itself",
			in:      []proto.Message{agg(primary, aggName)},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: clusters[1] "api.default.dc1.internal" is the aggregate cluster itself`,
		},
		{
			name:    "a child twice",
			in:      []proto.Message{agg(primary, peer, primary)},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: clusters[2] "failover-target~0~api" is listed twice`,
		},
		{
			name:    "nested aggregate",
			in:      []proto.Message{agg(primary, "inner"), xdstest.AggregateCluster("inner", peer)},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: clusters[1] "inner" is an aggregate cluster too; nested aggregate clusters are not supported`,
		},
		{
			name:    "child not in the configuration",
			in:      []proto.Message{agg(primary, "failover-target~2~api")},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: clusters[1] "failover-target~2~api" is not a cluster of this configuration`,
		},
		{
			name:    "ORIGINAL_DST child",
			in:      []proto.Message{agg(primary, "original-destination"), originalDstCluster()},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: clusters[1] "original-destination" is an ORIGINAL_DST cluster, which has no hosts to choose`,
		},
		{
			name:    "lb_policy other than CLUSTER_PROVIDED",
			in:      []proto.Message{withLB(agg(primary, peer), clusterv3.Cluster_ROUND_ROBIN)},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: lb_policy ROUND_ROBIN, want CLUSTER_PROVIDED`,
		},
		{
			name:    "settings of its own",
			in:      []proto.Message{xdstest.WithCircuitBreakers(agg(primary, peer), xdstest.Thresholds{MaxRequests: 1})},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: circuit_breakers is not supported (the child clusters' own apply)`,
		},
		{
			name:    "no typed_config",
			in:      []proto.Message{withClusterType(agg(primary), "envoy.clusters.aggregate")},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: cluster_type.typed_config is missing`,
		},
		{
			name:    "typed_config of another type",
			in:      []proto.Message{withTypedConfig(agg(primary), xdstest.Any(&wrapperspb.StringValue{Value: primary}))},
			wantErr: `cluster "api.default.dc1.internal": aggregate cluster: cluster_type.typed_config is type.googleapis.com/google.protobuf.StringValue, want envoy.extensions.clusters.aggregate.v3.ClusterConfig`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Compile(state(append(tt.in, children...)...))
			if err == nil {
				t.Fatalf("Compile succeeded with %+v, want error %q", rt.Clusters, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Compile error:\n  %v\nwant it to contain:\n  %s", err, tt.wantErr)
			}
		})
	}
}

// TestRecompileChecksAggregateChildren: an aggregate compiled before is
// reused as it is, but its children are checked against every new
// configuration: removing a child NACKs the update.
func TestRecompileChecksAggregateChildren(t *testing.T) {
	agg := xdstest.AggregateCluster(aggName, primary, peer)
	prev, err := Compile(state(agg, xdstest.EDSCluster(primary), xdstest.EDSCluster(peer)))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Recompile(prev, state(agg, xdstest.EDSCluster(primary), xdstest.EDSCluster(peer), xdstest.LoadAssignment(peer, xdstest.Endpoint("10.1.0.1:8443"))))
	if err != nil {
		t.Fatal(err)
	}
	if next.Clusters[aggName] != prev.Clusters[aggName] {
		t.Error("the unchanged aggregate cluster was compiled again")
	}
	_, err = Recompile(next, state(agg, xdstest.EDSCluster(primary)))
	if want := `cluster "api.default.dc1.internal": aggregate cluster: clusters[1] "failover-target~1~api" is not a cluster of this configuration`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Recompile without the peer's cluster: %v, want %q", err, want)
	}
}

func withClusterType(c *clusterv3.Cluster, name string) *clusterv3.Cluster {
	c.ClusterDiscoveryType = &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{Name: name}}
	return c
}

func withTypedConfig(c *clusterv3.Cluster, typed *anypb.Any) *clusterv3.Cluster {
	c.GetClusterType().TypedConfig = typed
	return c
}
