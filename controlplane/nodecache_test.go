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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-mesh/weft/catalog"
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
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		tick := time.NewTimer(10 * time.Millisecond)
		<-tick.C
	}
}

func waitPublished(t *testing.T, s *Server, version uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("catalog %d published", version), func() error {
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
	waitFor(t, "every stream registered", func() error {
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
	waitFor(t, "per-proxy state released", func() error {
		watched, published := s.cache.counts()
		keys := s.cache.GetStatusKeys()
		s.status.mu.Lock()
		streams, sent := len(s.status.streams), len(s.status.sent)
		s.status.mu.Unlock()
		s.metrics.mu.Lock()
		pending := len(s.metrics.pending)
		s.metrics.mu.Unlock()
		if watched != 0 || published != 1 || streams != 0 || sent != 0 || len(s.status.snapshot()) != 0 ||
			slices.ContainsFunc(keys, func(k string) bool { return k != knownProxy }) || pending != 0 {
			return fmt.Errorf("watched nodes %d, published %d, status keys %d, streams %d, sent %d, proxies %d, pending ACK timings %d",
				watched, published, len(keys), streams, sent, len(s.status.snapshot()), pending)
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
			waitFor(t, "the ACK's watch open in the cache", func() error {
				info := s.cache.GetStatusInfo(knownProxy)
				if info == nil || info.GetNumWatches()+info.GetNumDeltaWatches() != 1 {
					return fmt.Errorf("no open watch")
				}
				return nil
			})

			src <- &catalog.Snapshot{Version: 2, Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{}}
			waitPublished(t, s, 2)
			if s.cache.GetStatusInfo(knownProxy) == nil {
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
