package controlplane

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
)

const knownProxy = "web-1-sidecar-proxy"

// openStream opens one ADS stream (SotW or delta) on its own connection
// for node and subscribes to listeners. It returns a func that receives
// the next response's version, and closes the connection on cleanup or
// when the returned close func is called.
func openStream(t *testing.T, s *Server, delta bool, node string) (recv func() (string, error), closeFn func()) {
	t.Helper()
	conn, err := grpc.NewClient(s.XDSAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	n := &corev3.Node{Id: node}
	closeFn = func() { cancel(); conn.Close() }
	if delta {
		st, err := client.DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: n, TypeUrl: resourcev3.ListenerType}); err != nil {
			t.Fatal(err)
		}
		return func() (string, error) {
			r, err := st.Recv()
			if err != nil {
				return "", err
			}
			return r.GetSystemVersionInfo(), st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: r.GetNonce()})
		}, closeFn
	}
	st, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: n, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	return func() (string, error) {
		r, err := st.Recv()
		if err != nil {
			return "", err
		}
		return r.GetVersionInfo(), st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType,
			VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()})
	}, closeFn
}

// waitFor polls cond every 10 ms for up to 10 s.

func waitPublished(t *testing.T, s *Server, version uint64) {
	t.Helper()
	poll.Until(t, 10*time.Second, fmt.Sprintf("catalog %d published", version), func() error {
		if c := s.state.catalog.Load(); c == nil || c.Version != version {
			return fmt.Errorf("published catalog is %v", c)
		}
		return nil
	})
}

// TestPerProxyStateReleasedAfterDisconnect connects many ADS streams, SotW
// and delta, of proxies in the catalog and of node IDs that are not, then
// disconnects them all and checks that every per-proxy record — cache
// status entries and snapshots, watch counts, the status tracker's proxies,
// streams and sent responses, pending ACK timings — is back to its
// baseline: only the catalog's proxy keeps its snapshot.
func TestPerProxyStateReleasedAfterDisconnect(t *testing.T) {
	s, src := startServer(t)
	src <- testCatalog()
	waitPublished(t, s, 1)

	const perKind = 40
	var closers []func()
	unknown := 0
	for _, delta := range []bool{false, true} {
		for i := range perKind {
			node := knownProxy
			if i%2 == 1 {
				node = fmt.Sprintf("gone-%t-%d", delta, i)
				unknown++
			}
			recv, closeFn := openStream(t, s, delta, node)
			closers = append(closers, closeFn)
			if node == knownProxy {
				if _, err := recv(); err != nil {
					t.Fatalf("stream of %s: %v", node, err)
				}
			}
		}
	}
	poll.Until(t, 10*time.Second, "every stream registered", func() error {
		watched, _ := s.cache.counts()
		if len(s.status.snapshot()) != unknown+1 || watched != unknown+1 {
			return fmt.Errorf("%d proxies in status, %d nodes watched; want %d", len(s.status.snapshot()), watched, unknown+1)
		}
		return nil
	})
	if got := len(s.cache.GetStatusKeys()); got != unknown+1 {
		t.Fatalf("cache has %d status entries with every stream open, want %d", got, unknown+1)
	}

	for _, c := range closers {
		c()
	}
	poll.Until(t, 10*time.Second, "per-proxy state released", func() error {
		watched, published := s.cache.counts()
		keys := s.cache.GetStatusKeys()
		s.status.mu.Lock()
		streams := len(s.status.streams)
		s.status.mu.Unlock()
		s.metrics.mu.Lock()
		pending := len(s.metrics.pending)
		s.metrics.mu.Unlock()
		if watched != 0 || published != 1 || streams != 0 || len(s.status.snapshot()) != 0 ||
			slices.ContainsFunc(keys, func(k string) bool { return k != knownProxy }) || pending != 0 {
			return fmt.Errorf("watched nodes %d, published %d, status keys %d, streams %d, proxies %d, pending ACK timings %d",
				watched, published, len(keys), streams, len(s.status.snapshot()), pending)
		}
		return nil
	})
	if _, err := s.cache.GetSnapshot(knownProxy); err != nil {
		t.Fatalf("the catalog's proxy lost its snapshot: %v", err)
	}
	if _, err := s.cache.GetSnapshot("gone-true-1"); err == nil {
		t.Fatal("an unknown node has a snapshot")
	}
}

// TestProxyLeavingCatalogWhileConnectedKeepsItsWatch removes a connected
// proxy from the catalog and adds it back changed: the open stream must
// receive the new configuration, which it would not if leaving had
// dropped the node's watches from the cache.
func TestProxyLeavingCatalogWhileConnectedKeepsItsWatch(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			s, src := startServer(t)
			src <- testCatalog()
			waitPublished(t, s, 1)
			recv, _ := openStream(t, s, delta, knownProxy)
			first, err := recv()
			if err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 10*time.Second, "the ACK's watch open in the cache", func() error {
				if w, _ := s.cache.openWatches(knownProxy); w != 1 {
					return fmt.Errorf("%d open watches", w)
				}
				return nil
			})

			src <- &catalog.Snapshot{Version: 2, Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{}}
			waitPublished(t, s, 2)
			if _, held := s.cache.openWatches(knownProxy); !held {
				t.Fatal("the connected proxy's cache status was dropped when it left the catalog")
			}

			back := testCatalog()
			back.Version = 3
			back.Proxies[knownProxy].Upstreams[0].LocalBindPort = 9393
			src <- back
			got := make(chan string, 1)
			go func() {
				v, err := recv()
				if err != nil {
					t.Error(err)
				}
				got <- v
			}()
			select {
			case v := <-got:
				if v == first {
					t.Fatalf("got version %s again, want the changed configuration", v)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the proxy received nothing after it was registered again")
			}
		})
	}
}

// proxylessNode is a node whose metadata marks a proxyless gRPC client.
func proxylessNode(id string) *corev3.Node {
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
		ProxylessMetadataKey: structpb.NewBoolValue(true)}}}
}

// listenerSnapshot holds listeners of the given names, at version "v1".
func listenerSnapshot(t *testing.T, names ...string) *cachev3.Snapshot {
	t.Helper()
	var ls []types.Resource
	for _, n := range names {
		ls = append(ls, &listenerv3.Listener{Name: n})
	}
	snap, err := cachev3.NewSnapshot("v1", map[resourcev3.Type][]types.Resource{resourcev3.ListenerType: ls})
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.ConstructVersionMap(); err != nil {
		t.Fatal(err)
	}
	return snap
}

// answer is what a watch was answered: the resources sent and, over
// delta, the names removed.
type answer struct {
	Resources []string
	Removed   []string
}

// TestNodeCacheAnswersByKind opens one watch per case on a nodeCache
// whose node has listeners a, b and c, and checks how it is answered: a
// sidecar's from the ADS-mode cache (a named SotW request that leaves out
// resources the snapshot holds waits, which is what kept proxyless
// clients unanswered), a proxyless client's with exactly the names it
// subscribes to, and over delta with a removal for each newly subscribed
// name that does not exist. A nil answer means the watch stays open.
func TestNodeCacheAnswersByKind(t *testing.T) {
	held := func(t *testing.T, names ...string) map[string]string {
		versions := listenerSnapshot(t, "a", "b", "c").GetVersionMap(resourcev3.ListenerType)
		out := map[string]string{}
		for _, n := range names {
			out[n] = versions[n]
		}
		return out
	}
	tests := []struct {
		name       string
		proxyless  bool
		delta      bool
		names      []string // SotW resource_names; delta resource_names_subscribe
		before     []string // delta: names subscribed by earlier requests
		held       []string // names the client holds at the current version
		version    string   // SotW version_info
		noSnapshot bool     // the watch opens before the node's first snapshot
		initial    bool     // delta: the request lists held in initial_resource_versions
		want       *answer
	}{
		{name: "sidecar sotw wildcard", want: &answer{Resources: []string{"a", "b", "c"}}},
		{name: "sidecar sotw named subset waits (ADS mode)", names: []string{"a"}},
		{name: "proxyless sotw named", proxyless: true, names: []string{"a"}, want: &answer{Resources: []string{"a"}}},
		{name: "proxyless sotw two names", proxyless: true, names: []string{"c", "a"}, want: &answer{Resources: []string{"a", "c"}}},
		{name: "proxyless sotw with a missing name", proxyless: true, names: []string{"a", "nope"}, want: &answer{Resources: []string{"a"}}},
		{name: "proxyless sotw only missing names: empty answer", proxyless: true, names: []string{"nope"}, want: &answer{}},
		{name: "proxyless sotw adds a name", proxyless: true, names: []string{"a", "b"}, held: []string{"a"}, version: "v1",
			want: &answer{Resources: []string{"a", "b"}}},
		// SotW has no "does not exist": a missing name added at the
		// current version gets no answer (clients time out, 15 s).
		{name: "proxyless sotw adds a missing name", proxyless: true, names: []string{"a", "nope"}, held: []string{"a"}, version: "v1"},
		{name: "proxyless sotw ACK", proxyless: true, names: []string{"a"}, held: []string{"a"}, version: "v1"},
		{name: "proxyless sotw before its snapshot", proxyless: true, names: []string{"b", "nope"}, noSnapshot: true,
			want: &answer{Resources: []string{"b"}}},

		{name: "sidecar delta wildcard", delta: true, want: &answer{Resources: []string{"a", "b", "c"}}},
		{name: "sidecar delta named: no removals", delta: true, names: []string{"a", "nope"}, want: &answer{Resources: []string{"a"}}},
		{name: "proxyless delta named", proxyless: true, delta: true, names: []string{"a"}, want: &answer{Resources: []string{"a"}}},
		{name: "proxyless delta missing name removed", proxyless: true, delta: true, names: []string{"a", "nope"},
			want: &answer{Resources: []string{"a"}, Removed: []string{"nope"}}},
		{name: "proxyless delta only a missing name", proxyless: true, delta: true, names: []string{"nope"},
			want: &answer{Removed: []string{"nope"}}},
		{name: "proxyless delta adds a missing name", proxyless: true, delta: true, before: []string{"a"}, held: []string{"a"},
			names: []string{"nope"}, want: &answer{Removed: []string{"nope"}}},
		{name: "proxyless delta adds a name", proxyless: true, delta: true, before: []string{"a", "nope"}, held: []string{"a"},
			names: []string{"b"}, want: &answer{Resources: []string{"b"}}},
		{name: "proxyless delta ACK after a removal", proxyless: true, delta: true, before: []string{"a", "nope"}, held: []string{"a"}},
		{name: "proxyless delta resubscribes a held name: sent again", proxyless: true, delta: true, before: []string{"a"}, held: []string{"a"},
			names: []string{"a"}, want: &answer{Resources: []string{"a"}}},
		{name: "proxyless delta reconnects holding a", proxyless: true, delta: true, held: []string{"a"}, names: []string{"a"}, initial: true},
		{name: "proxyless delta reconnects holding a removed name", proxyless: true, delta: true, held: []string{"a", "gone"},
			names: []string{"a", "gone"}, initial: true, want: &answer{Removed: []string{"gone"}}},
		{name: "proxyless delta wildcard", proxyless: true, delta: true, names: []string{"*"},
			want: &answer{Resources: []string{"a", "b", "c"}}},
		{name: "proxyless delta before its snapshot", proxyless: true, delta: true, names: []string{"b", "nope"}, noSnapshot: true,
			want: &answer{Resources: []string{"b"}, Removed: []string{"nope"}}},
		{name: "proxyless delta two requests before its snapshot", proxyless: true, delta: true, before: []string{"nope"},
			names: []string{"b"}, noSnapshot: true, want: &answer{Resources: []string{"b"}, Removed: []string{"nope"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newNodeCache(nil)
			node := &corev3.Node{Id: "n"}
			if tc.proxyless {
				node = proxylessNode("n")
			}
			publish := func() {
				snap := listenerSnapshot(t, "a", "b", "c")
				if err := c.SetSnapshot(context.Background(), "n", lazyOf(snap), deltaStateOf(t, snap)); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.noSnapshot {
				publish()
			}
			var got func() *answer
			if tc.delta {
				got = openDeltaWatch(t, c, node, tc.before, tc.names, held(t, tc.held...), tc.initial)
			} else {
				got = openSotwWatch(t, c, node, tc.names, tc.version, held(t, tc.held...))
			}
			if tc.noSnapshot {
				if a := got(); a != nil {
					t.Fatalf("answered %+v before the node had a snapshot", a)
				}
				publish()
			}
			if diff := cmp.Diff(tc.want, got()); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// openSotwWatch opens a state-of-the-world watch as go-control-plane's
// server does for a request naming names at version, from a client that
// holds held, and returns a func that reports its answer so far.
func openSotwWatch(t *testing.T, c *nodeCache, node *corev3.Node, names []string, version string, held map[string]string) func() *answer {
	t.Helper()
	sub := stream.NewSotwSubscription(names, true)
	sub.SetReturnedResources(held)
	ch := make(chan cachev3.Response, 1)
	req := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: names, VersionInfo: version}
	if version != "" {
		req.ResponseNonce = "1"
	}
	cancel, err := c.CreateWatch(req, &sub, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cancel != nil {
			cancel()
		}
	})
	return func() *answer {
		select {
		case r := <-ch:
			resp, err := r.GetDiscoveryResponse()
			if err != nil {
				t.Fatal(err)
			}
			return &answer{Resources: sortedOrNil(resourceNames(resp))}
		default:
			return nil
		}
	}
}

// openDeltaWatch opens an incremental watch as go-control-plane's server
// does for a request subscribing to names after earlier requests
// subscribed to before, from a client that holds held (and says so in
// initial_resource_versions when initial).
func openDeltaWatch(t *testing.T, c *nodeCache, node *corev3.Node, before, names []string, held map[string]string, initial bool) func() *answer {
	t.Helper()
	sub := stream.NewDeltaSubscription(before, nil, held, true)
	if len(before) > 0 {
		sub.UpdateResourceSubscriptions(names, nil)
	} else {
		sub = stream.NewDeltaSubscription(names, nil, held, true)
	}
	ch := make(chan cachev3.DeltaResponse, 1)
	req := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: names}
	if len(before) > 0 {
		req.ResponseNonce = "1"
	}
	if initial {
		req.InitialResourceVersions = held
	}
	cancel, err := c.CreateDeltaWatch(req, &sub, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cancel != nil {
			cancel()
		}
	})
	return func() *answer {
		select {
		case r := <-ch:
			resp, err := r.GetDeltaDiscoveryResponse()
			if err != nil {
				t.Fatal(err)
			}
			a := &answer{Removed: sortedOrNil(resp.GetRemovedResources())}
			for _, res := range resp.GetResources() {
				a.Resources = append(a.Resources, res.GetName())
			}
			a.Resources = sortedOrNil(a.Resources)
			return a
		default:
			return nil
		}
	}
}

func sortedOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(s))
}
