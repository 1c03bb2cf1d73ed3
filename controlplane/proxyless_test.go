package controlplane

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
)

// meshCatalog is testCatalog with instances of every service in services.
func meshCatalog(version uint64, services ...string) *catalog.Snapshot {
	snap := testCatalog()
	snap.Version = version
	snap.Endpoints = map[string][]catalog.Endpoint{}
	for i, svc := range services {
		snap.Endpoints[svc] = []catalog.Endpoint{{ProxyID: svc + "-1-sidecar-proxy", Address: "127.0.0.1",
			Port: 21000 + i, WeightPassing: 1, WeightWarning: 1}}
	}
	return snap
}

// adsClient opens an ADS client connection to s, closed on cleanup.
func adsClient(t *testing.T, s *Server) (discoveryv3.AggregatedDiscoveryServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(s.XDSAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return discoveryv3.NewAggregatedDiscoveryServiceClient(conn), ctx
}

// TestProxylessNamedSubscriptions runs proxyless clients against a mesh
// of four services: a SotW client (what grpc-go speaks) gets exactly the
// listeners it names, as it adds them, on each of its streams; a delta client is told at once
// that a name it subscribes to does not exist; both receive a service
// registered after they subscribed to it, on the same stream; and
// /proxies shows what each subscribed to and was sent.
func TestProxylessNamedSubscriptions(t *testing.T) {
	s, src := startServer(t)
	src <- meshCatalog(1, "api", "echo", "grpcsvc", "h2svc")
	waitPublished(t, s, 1)
	client, ctx := adsClient(t, s)

	// grpc-go opens an ADS stream per target it dials, all with the
	// client's node ID. One stream here also adds names in its ACK: one
	// that exists is sent at once; one that does not gets no answer, as
	// SotW has no "does not exist" (the client times out).
	sotwNode := proxylessNode("proxyless/web/sotw")
	sotw := openSotw(t, client, ctx, sotwNode, "grpcsvc")
	sotw.send(sotw.recv("grpcsvc"), "grpcsvc", "echo")
	sotw.send(sotw.recv("echo", "grpcsvc"), "grpcsvc", "later")
	second := openSotw(t, client, ctx, sotwNode, "h2svc")
	second.send(second.recv("h2svc"), "h2svc")

	delta, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recvDelta := func(want answer) {
		t.Helper()
		r, err := delta.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got := answer{Removed: sortedOrNil(r.GetRemovedResources())}
		for _, res := range r.GetResources() {
			got.Resources = append(got.Resources, res.GetName())
		}
		got.Resources = sortedOrNil(got.Resources)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("delta answer (-want +got):\n%s", diff)
		}
		if err := delta.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := delta.Send(&discoveryv3.DeltaDiscoveryRequest{Node: proxylessNode("proxyless/web/delta"), TypeUrl: resourcev3.ListenerType,
		ResourceNamesSubscribe: []string{"grpcsvc", "nosuch"}}); err != nil {
		t.Fatal(err)
	}
	recvDelta(answer{Resources: []string{"grpcsvc"}, Removed: []string{"nosuch"}})
	if err := delta.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType,
		ResourceNamesSubscribe: []string{"later"}}); err != nil {
		t.Fatal(err)
	}
	recvDelta(answer{Removed: []string{"later"}})

	poll.Until(t, 10*time.Second, "subscriptions in /proxies", func() error {
		want := map[string]TypeSync{
			"proxyless/web/delta": {Subscribed: []string{"grpcsvc", "later", "nosuch"}, Sent: []string{"grpcsvc"}, Missing: []string{"later", "nosuch"}},
			"proxyless/web/sotw":  {Subscribed: []string{"grpcsvc", "h2svc", "later"}, Sent: []string{"grpcsvc", "h2svc"}, Missing: []string{"later"}},
		}
		return checkSubscriptions(t, s, want)
	})

	src <- meshCatalog(2, "api", "echo", "grpcsvc", "h2svc", "later")
	sotw.recv("grpcsvc", "later")
	recvDelta(answer{Resources: []string{"later"}})
}

// sotwStream is a raw state-of-the-world ADS stream subscribed to
// listeners.
type sotwStream struct {
	t *testing.T
	discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func openSotw(t *testing.T, client discoveryv3.AggregatedDiscoveryServiceClient, ctx context.Context, node *corev3.Node, names ...string) sotwStream {
	t.Helper()
	st, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: names}); err != nil {
		t.Fatal(err)
	}
	return sotwStream{t, st}
}

// recv receives a response and checks it holds the listeners want.
func (s sotwStream) recv(want ...string) *discoveryv3.DiscoveryResponse {
	s.t.Helper()
	r, err := s.Recv()
	if err != nil {
		s.t.Fatal(err)
	}
	if diff := cmp.Diff(want, sortedOrNil(resourceNames(r))); diff != "" {
		s.t.Fatalf("SotW listeners (-want +got):\n%s", diff)
	}
	return r
}

// send ACKs r, subscribing to names.
func (s sotwStream) send(r *discoveryv3.DiscoveryResponse, names ...string) {
	s.t.Helper()
	if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResourceNames: names,
		VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
		s.t.Fatal(err)
	}
}

// checkSubscriptions compares the proxyless clients' listener
// subscriptions in /proxies with want, by proxy ID.
func checkSubscriptions(t *testing.T, s *Server, want map[string]TypeSync) error {
	t.Helper()
	var proxies []ProxyStatus
	getJSON(t, "http://"+s.AdminAddr().String()+"/proxies", &proxies)
	got := map[string]TypeSync{}
	for _, p := range proxies {
		if !p.Proxyless {
			continue
		}
		if ts := p.Types[resourcev3.ListenerType]; ts != nil {
			got[p.ID] = TypeSync{Subscribed: ts.Subscribed, Sent: ts.Sent, Missing: ts.Missing}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return fmt.Errorf("listener subscriptions (-want +got):\n%s", diff)
	}
	return nil
}

// TestProxylessClientLeavesNoState checks that a proxyless client's
// subscriptions and snapshots are released when its streams end.
func TestProxylessClientLeavesNoState(t *testing.T) {
	s, src := startServer(t)
	src <- meshCatalog(1, "grpcsvc")
	waitPublished(t, s, 1)
	client, ctx := adsClient(t, s)
	ctx, cancel := context.WithCancel(ctx)
	st, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: proxylessNode("proxyless/web/gone"), TypeUrl: resourcev3.ListenerType,
		ResourceNames: []string{"grpcsvc"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	poll.Until(t, 10*time.Second, "proxyless state released", func() error {
		s.status.mu.Lock()
		named, streams := len(s.status.named), len(s.status.streams)
		s.status.mu.Unlock()
		keys := s.cache.GetStatusKeys()
		watched, published := s.cache.counts()
		if named != 0 || streams != 0 || watched != 0 || published != 1 || slices.Contains(keys, "proxyless/web/gone") {
			return fmt.Errorf("named subscriptions %d, streams %d, watched nodes %d, published %d, cache status keys %v",
				named, streams, watched, published, keys)
		}
		return nil
	})
	if _, err := s.cache.GetSnapshot("proxyless/web/gone"); err == nil {
		t.Fatal("the gone proxyless client still has a snapshot")
	}
}
