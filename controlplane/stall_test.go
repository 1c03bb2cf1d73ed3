package controlplane

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestStalledClientIsDisconnected: a client that asks for its listeners
// and never reads the answer (several hundred KB, more than HTTP/2's
// flow-control windows hold) has its connection closed once the answer
// has gone unanswered for the timeout, and the stall is counted; a client
// that reads and ACKs stays connected and gets the next version.
func TestStalledClientIsDisconnected(t *testing.T) {
	forEachXDSServer(t, func(t *testing.T, server string) {
		for _, mode := range []string{"sotw", "delta"} {
			t.Run(mode, func(t *testing.T) { testStalledClient(t, server, mode) })
		}
	})
}

func testStalledClient(t *testing.T, server, mode string) {
	// The timeout is what the reading client gets to receive, decode and
	// ACK 3,001 listeners: under -race beside other suites that has taken
	// more than 300 ms (CI closed the reader as stalled), so it has a
	// wide margin; the stuck client is still closed within seconds.
	s, src := startServerWith(t, Config{SendTimeout: 3 * time.Second, XDSServer: server})
	catalogOf := func(version uint64, port int) *catalog.Snapshot {
		snap := &catalog.Snapshot{Version: version, Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{}}
		for _, id := range []string{"stuck-1-sidecar-proxy", "reader-1-sidecar-proxy"} {
			p := &catalog.Proxy{ID: id, Address: "127.0.0.1", Port: port, DestinationName: strings.TrimSuffix(id, "-1-sidecar-proxy"),
				LocalAddress: "127.0.0.1", LocalPort: 8080}
			for i := range 3000 {
				p.Upstreams = append(p.Upstreams, catalog.Upstream{DestinationName: fmt.Sprintf("svc-%04d", i), LocalBindAddress: "127.0.0.1", LocalBindPort: 10000 + i})
			}
			snap.Proxies[id] = p
		}
		return snap
	}
	src <- catalogOf(1, 21000)

	stuck := openADS(t, s, mode, "stuck-1-sidecar-proxy")
	reader := openADS(t, s, mode, "reader-1-sidecar-proxy")
	if n := reader.recvAndACK(t); n != 3001 {
		t.Fatalf("the reading client got %d listeners, want 3,001", n)
	}
	metrics := "http://" + s.AdminAddr().String() + "/metrics"
	poll.Until(t, 10*time.Second, "the stalled client's connection closed", func() error {
		if !strings.Contains(getBody(t, metrics), "weft_cp_xds_send_stalls_total 1") {
			return fmt.Errorf("no stall counted yet")
		}
		return nil
	})
	// What the window held arrives, then the stream ends with the
	// connection: the client reconnects, as xDS clients do.
	for stuck.recv() == nil {
	}
	src <- catalogOf(2, 21001) // every public listener moves
	if n := reader.recvAndACK(t); n == 0 {
		t.Fatal("the reading client got no listener in the second version")
	}
	if !strings.Contains(getBody(t, metrics), "weft_cp_xds_send_stalls_total 1") {
		t.Error("the reading client, which ACKs, was counted as stalled")
	}
}

// stallClient is a raw SotW or delta ADS stream subscribed to listeners.
type stallClient struct {
	conn  *grpc.ClientConn
	sotw  discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	delta discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
}

// openADS subscribes node to listeners over its own connection, whose
// HTTP/2 windows are the smallest grpc-go allows and do not grow.
func openADS(t *testing.T, s *Server, mode, node string) *stallClient {
	t.Helper()
	conn, ads, ctx := xdsClient(t, s.XDSAddr().String(), grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	c := &stallClient{conn: conn}
	var err error
	if mode == "delta" {
		if c.delta, err = ads.DeltaAggregatedResources(ctx); err == nil {
			err = c.delta.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resourcev3.ListenerType})
		}
	} else if c.sotw, err = ads.StreamAggregatedResources(ctx); err == nil {
		err = c.sotw.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resourcev3.ListenerType})
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *stallClient) recv() error {
	if c.delta != nil {
		_, err := c.delta.Recv()
		return err
	}
	_, err := c.sotw.Recv()
	return err
}

// recvAndACK receives a response, ACKs it and returns its resources.
func (c *stallClient) recvAndACK(t *testing.T) int {
	t.Helper()
	if c.delta != nil {
		resp, err := c.delta.Recv()
		if err == nil {
			err = c.delta.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce})
		}
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Resources)
	}
	resp, err := c.sotw.Recv()
	if err == nil {
		err = c.sotw.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo})
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Resources)
}

// TestStallGuardKeepsConnectionsUnwrapped: the server gets each accepted
// connection as the kernel's TCP connection (so grpc-go reads it without a
// per-connection read buffer), the guard still finds a client's connection
// while it is served and forgets it when it ends. With grpc-go, a
// connection that never became a transport is forgotten after gRPC's
// handshake timeout; the lean server serves a connection from its accept
// (and closes one that sends no preface within its header timeout).
func TestStallGuardKeepsConnectionsUnwrapped(t *testing.T) {
	forEachXDSServer(t, testStallGuardKeepsConnectionsUnwrapped)
}

func testStallGuardKeepsConnectionsUnwrapped(t *testing.T, server string) {
	s, src := startServerWith(t, Config{XDSServer: server})
	src <- testCatalog()
	g := s.stalls
	count := func() (transports, pending int) {
		g.conns.Range(func(_, v any) bool {
			if _, raw := v.(*guardedConn).conn.(*net.TCPConn); !raw {
				t.Errorf("the guard holds a %T, want the accepted *net.TCPConn", v.(*guardedConn).conn)
			}
			if v.(*guardedConn).transport.Load() {
				transports++
			} else {
				pending++
			}
			return true
		})
		return
	}

	c := openADS(t, s, "delta", "web-1-sidecar-proxy")
	c.recvAndACK(t)
	if n, _ := count(); n != 1 {
		t.Fatalf("%d connections recorded as transports while one client is connected, want 1", n)
	}
	c.conn.Close()
	poll.Until(t, 10*time.Second, "the closed client's connection forgotten", func() error {
		if n, _ := count(); n != 0 {
			return fmt.Errorf("%d transports recorded, want 0", n)
		}
		return nil
	})

	raw, err := net.Dial("tcp", s.XDSAddr().String()) // never speaks HTTP/2
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if server == XDSServerLean {
		poll.Until(t, 10*time.Second, "the connection recorded as served", func() error {
			if n, p := count(); n != 1 || p != 0 {
				return fmt.Errorf("%d served and %d pending connections, want 1 and 0", n, p)
			}
			return nil
		})
		raw.Close()
		poll.Until(t, 10*time.Second, "the closed connection forgotten", func() error {
			if n, _ := count(); n != 0 {
				return fmt.Errorf("%d connections recorded, want 0", n)
			}
			return nil
		})
		return
	}
	poll.Until(t, 10*time.Second, "the handshaking connection recorded", func() error {
		if _, p := count(); p != 1 {
			return fmt.Errorf("%d pending connections, want 1", p)
		}
		return nil
	})
	g.forgetHandshakes(time.Now())
	if _, p := count(); p != 1 {
		t.Fatalf("a connection younger than the handshake timeout was forgotten")
	}
	g.forgetHandshakes(time.Now().Add(handshakeTimeout + time.Second))
	if _, p := count(); p != 0 {
		t.Fatalf("%d pending connections after the handshake timeout, want 0", p)
	}
}
