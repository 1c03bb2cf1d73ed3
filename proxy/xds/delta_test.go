package xds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/internal/poll"
)

// deltaServer is go-control-plane's ADS server (delta and SotW) over a
// snapshot cache, on loopback.
type deltaServer struct {
	addr  string
	cache cachev3.SnapshotCache
	srv   *grpc.Server
}

func startDeltaServer(t *testing.T) *deltaServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds := &deltaServer{addr: ln.Addr().String(), cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)}
	ds.srv = grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(ds.srv, serverv3.NewServer(context.Background(), ds.cache, nil))
	go ds.srv.Serve(ln)
	t.Cleanup(ds.srv.Stop)
	return ds
}

func (ds *deltaServer) set(t *testing.T, version string, clusters []string, listeners ...string) {
	t.Helper()
	res := map[resourcev3.Type][]types.Resource{}
	for _, c := range clusters {
		res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], edsCluster(c))
		res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], &endpointv3.ClusterLoadAssignment{ClusterName: c})
	}
	for _, l := range listeners {
		res[resourcev3.ListenerType] = append(res[resourcev3.ListenerType], listener(l))
	}
	snap, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.cache.SetSnapshot(context.Background(), "web-1-sidecar-proxy", snap); err != nil {
		t.Fatal(err)
	}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		},
	}
}

// endpointsOfClusters subscribes to the load assignment of every cluster,
// as the proxy's compile step does for EDS clusters.
func endpointsOfClusters(s State) Subscriptions {
	var subs Subscriptions
	for name := range s.Clusters.Items {
		subs.Endpoints = append(subs.Endpoints, name)
	}
	return subs
}

func names[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// waitState polls the client's accepted state until ok holds.
func waitState(t *testing.T, c *Client, what string, ok func(State) bool) {
	t.Helper()
	poll.Until(t, wait, what, func() error {
		if s := c.State(); !ok(s) {
			return fmt.Errorf("listeners %v clusters %v endpoints %v", names(s.Listeners.Items), names(s.Clusters.Items), names(s.Endpoints.Items))
		}
		return nil
	})
}

func startDeltaClient(t *testing.T, a *testApplier, addr string) *Client {
	t.Helper()
	c := New(Options{
		Addrs: []string{addr}, Delta: true,
		Node:    &corev3.Node{Id: "web-1-sidecar-proxy"},
		Apply:   a.apply,
		Logger:  testLogger(t),
		Backoff: Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

// TestDeltaFollowsGoControlPlane runs the delta client against
// go-control-plane's delta server: wildcard listeners and clusters,
// endpoints subscribed by name as clusters come and go, removals applied,
// a rejected update NACKed while the previous resources keep serving.
func TestDeltaFollowsGoControlPlane(t *testing.T) {
	ds := startDeltaServer(t)
	ds.set(t, "v1", []string{"api", "db"}, "in", "out-api")
	a := &testApplier{subs: endpointsOfClusters, fail: func(s State) error {
		if _, bad := s.Clusters.Items["bad"]; bad {
			return errors.New(`cluster "bad": rejected by the test`)
		}
		return nil
	}}
	c := startDeltaClient(t, a, ds.addr)

	waitState(t, c, "first sync", func(s State) bool {
		return slices.Equal(names(s.Listeners.Items), []string{"in", "out-api"}) &&
			slices.Equal(names(s.Clusters.Items), []string{"api", "db"}) &&
			slices.Equal(names(s.Endpoints.Items), []string{"api", "db"})
	})
	if v := c.heldVersions(ClusterType); len(v) != 2 || v["api"] == "" {
		t.Errorf("held cluster versions = %v, want one per cluster", v)
	}

	// db and out-api go away, cache and out-cache arrive: only the change
	// is sent, and the endpoints follow the clusters.
	ds.set(t, "v2", []string{"api", "cache"}, "in", "out-cache")
	waitState(t, c, "update with removals", func(s State) bool {
		return slices.Equal(names(s.Listeners.Items), []string{"in", "out-cache"}) &&
			slices.Equal(names(s.Clusters.Items), []string{"api", "cache"}) &&
			slices.Equal(names(s.Endpoints.Items), []string{"api", "cache"})
	})
	if got := c.Status().Types[EndpointType].Subscribed; !slices.Equal(got, []string{"api", "cache"}) {
		t.Errorf("endpoint subscriptions = %v, want [api cache]", got)
	}

	// A cluster the applier rejects: NACKed, the previous clusters stay.
	ds.set(t, "v3", []string{"api", "bad"}, "in")
	poll.UntilTrue(t, wait, "the rejected cluster update NACKed", func() bool { return c.Status().Types[ClusterType].LastNack != nil })
	if nack := c.Status().Types[ClusterType].LastNack; nack.Error == "" {
		t.Errorf("NACK without error detail: %+v", nack)
	}
	if got := names(c.State().Clusters.Items); !slices.Equal(got, []string{"api", "cache"}) {
		t.Errorf("clusters after the NACK = %v, want the previous [api cache]", got)
	}
}

// TestDeltaResumesWithHeldVersions reconnects a delta client to a fresh
// server with the same state: the client tells it what it holds
// (initial_resource_versions), keeps serving it, and ends up in sync.
func TestDeltaResumesWithHeldVersions(t *testing.T) {
	first := startDeltaServer(t)
	first.set(t, "v1", []string{"api"}, "in")
	second := startDeltaServer(t)
	second.set(t, "v2", []string{"api", "db"}, "in")
	a := &testApplier{subs: endpointsOfClusters}
	c := New(Options{
		Addrs: []string{first.addr, second.addr}, Delta: true,
		Node: &corev3.Node{Id: "web-1-sidecar-proxy"}, Apply: a.apply, Logger: testLogger(t),
		Backoff: Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitState(t, c, "sync with the first server", func(s State) bool {
		return slices.Equal(names(s.Endpoints.Items), []string{"api"})
	})
	// The first server goes away; the client fails over to the second.
	first.srv.Stop()
	waitState(t, c, "sync with the second server", func(s State) bool {
		return slices.Equal(names(s.Clusters.Items), []string{"api", "db"}) &&
			slices.Equal(names(s.Endpoints.Items), []string{"api", "db"})
	})
}
