package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/poll"
)

// deltaClient is a raw delta ADS stream of a test.
type deltaClient struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
}

// xdsClient connects to the xDS server at addr; the connection and the
// context of its streams end with the test. The streams have no deadline:
// one ends only when the server ends it (TestStopEndsDeltaStreams) or the
// test does.
func xdsClient(t *testing.T, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, discoveryv3.AggregatedDiscoveryServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return conn, discoveryv3.NewAggregatedDiscoveryServiceClient(conn), ctx
}

func dialDelta(t *testing.T, addr string) *deltaClient {
	t.Helper()
	_, ads, ctx := xdsClient(t, addr)
	stream, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &deltaClient{t: t, stream: stream}
}

func (c *deltaClient) send(req *discoveryv3.DeltaDiscoveryRequest) {
	c.t.Helper()
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *deltaClient) recv() *discoveryv3.DeltaDiscoveryResponse {
	c.t.Helper()
	resp, err := c.stream.Recv()
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// ack ACKs resp without naming the node, as clients do after the first
// request.
func (c *deltaClient) ack(resp *discoveryv3.DeltaDiscoveryResponse) {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.TypeUrl, ResponseNonce: resp.Nonce})
}

func deltaNames(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	var names []string
	for _, r := range resp.Resources {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}

// TestDeltaServerProtocol walks one delta stream through what go-control-
// plane's delta server does: nonces count up from 1 on the stream; the
// node named on the first request stands for the later ones; a response
// to an open watch is pushed when a new catalog changes its type, with
// only what changed; a named subscription gets the names it asks for; a
// reconnecting client is not sent the versions it lists as held; a
// request without a type URL ends the stream.
func TestDeltaServerProtocol(t *testing.T) {
	forEachXDSServer(t, testDeltaServerProtocol)
}

func testDeltaServerProtocol(t *testing.T, server string) {
	s, src := startServerWith(t, Config{XDSServer: server})
	src <- testCatalog()
	c := dialDelta(t, s.XDSAddr().String())
	node := &corev3.Node{Id: "web-1-sidecar-proxy"}

	c.send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType})
	lds := c.recv()
	if lds.Nonce != "1" || lds.TypeUrl != resourcev3.ListenerType || len(lds.Resources) != 2 {
		t.Fatalf("first response: nonce %q, type %s, %d listeners; want nonce 1 and 2 listeners", lds.Nonce, lds.TypeUrl, len(lds.Resources))
	}
	listeners := deltaNames(lds)
	c.ack(lds)

	// The node is remembered: a request of another type without it is
	// answered for the same node.
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	cds := c.recv()
	if cds.Nonce != "2" || cds.TypeUrl != resourcev3.ClusterType || len(cds.Resources) == 0 {
		t.Fatalf("second response: nonce %q, type %s, %d clusters; want nonce 2 and the node's clusters", cds.Nonce, cds.TypeUrl, len(cds.Resources))
	}
	c.ack(cds)

	// A new catalog that moves the public listener pushes it alone.
	next := testCatalog()
	next.Version = 2
	next.Proxies["web-1-sidecar-proxy"].Port = 21001
	src <- next
	pushed := c.recv()
	if pushed.Nonce != "3" || pushed.TypeUrl != resourcev3.ListenerType || len(pushed.Resources) != 1 || len(pushed.RemovedResources) != 0 {
		t.Fatalf("pushed response: nonce %q, type %s, listeners %v, removed %v; want nonce 3 and the public listener alone",
			pushed.Nonce, pushed.TypeUrl, deltaNames(pushed), pushed.RemovedResources)
	}
	c.ack(pushed)

	// A second stream of the same node subscribing to one listener by
	// name gets that one.
	named := dialDelta(t, s.XDSAddr().String())
	named.send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: listeners[:1]})
	if got := named.recv(); got.Nonce != "1" || !slices.Equal(deltaNames(got), listeners[:1]) {
		t.Fatalf("named subscription: nonce %q, listeners %v; want nonce 1 and %v", got.Nonce, deltaNames(got), listeners[:1])
	}

	// A client reconnecting with the versions it holds is sent none of
	// them again.
	held := map[string]string{}
	for _, r := range lds.Resources {
		held[r.Name] = r.Version
	}
	for _, r := range pushed.Resources {
		held[r.Name] = r.Version
	}
	again := dialDelta(t, s.XDSAddr().String())
	again.send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, InitialResourceVersions: held})
	if got := again.recv(); len(got.Resources) != 0 || len(got.RemovedResources) != 0 {
		t.Fatalf("reconnected with every version held: sent %v, removed %v; want nothing", deltaNames(got), got.RemovedResources)
	}

	c.send(&discoveryv3.DeltaDiscoveryRequest{ResponseNonce: pushed.Nonce})
	if _, err := c.stream.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a request without a type URL ended the stream with %v, want InvalidArgument", err)
	}
}

// TestDeltaStreamsRunOnTheirHandlers: a synced delta stream that has
// nothing to send holds, on grpc-go's server, one goroutine of the
// control plane's, its gRPC handler's, and none of go-control-plane's
// delta server; on the lean server it holds none: its client costs one
// goroutine, its connection's reader, parked on the socket while the
// connection is idle, and none of grpc-go's transport.
func TestDeltaStreamsRunOnTheirHandlers(t *testing.T) {
	forEachXDSServer(t, testDeltaStreamsRunOnTheirHandlers)
}

func testDeltaStreamsRunOnTheirHandlers(t *testing.T, server string) {
	const streams = 8
	s, src := startServerWith(t, Config{XDSServer: server})
	src <- testCatalog()
	for range streams {
		c := dialDelta(t, s.XDSAddr().String())
		c.send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "web-1-sidecar-proxy"}, TypeUrl: resourcev3.ListenerType})
		c.ack(c.recv())
	}
	count := func(stacks, fn string) int { return strings.Count(stacks, fn) }
	poll.Until(t, 10*time.Second, "the streams idle", func() error {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		stacks := b.String()
		if n := count(stacks, "controlplane.(*deltaServerStream).flush("); n != 0 {
			return fmt.Errorf("%d goroutines still sending", n)
		}
		if n := count(stacks, "go-control-plane/pkg/server/delta/v3"); n != 0 {
			t.Fatalf("%d goroutines run go-control-plane's delta server, want 0", n)
		}
		if server != XDSServerLean {
			if n := count(stacks, "controlplane.(*deltaServer).serve("); n != streams {
				t.Fatalf("%d goroutines serve delta streams, want %d", n, streams)
			}
			return nil
		}
		if n := count(stacks, "controlplane.(*detachedDelta).receive(") + count(stacks, "controlplane.(*deltaServer).serve("); n != 0 {
			return fmt.Errorf("%d goroutines wait on idle delta streams, want 0", n)
		}
		// An idle connection's reader is parked: a goroutine that only
		// waits for the socket. The handlers' workers wait for another
		// stream a few seconds.
		if n := countGoroutines(stacks, "proxy/listener.(*h2sConn).readFrames("); n != 0 {
			return fmt.Errorf("%d goroutines read idle lean connections, want 0 (parked)", n)
		}
		if n := countGoroutines(stacks, "proxy/listener.(*h2sConn).resume("); n != streams {
			return fmt.Errorf("%d goroutines wait on the lean connections, want %d", n, streams)
		}
		if n := countGoroutines(stacks, "proxy/listener.(*h2sConn).") - countGoroutines(stacks, "proxy/listener.(*h2sConn).worker("); n != streams {
			return fmt.Errorf("%d goroutines serve the lean connections besides idle workers, want %d", n, streams)
		}
		if n := countGoroutines(stacks, "grpc/internal/transport.(*http2Server)"); n != 0 {
			t.Fatalf("%d goroutines run grpc-go's server transport, want 0", n)
		}
		return nil
	})
}

// TestStopEndsDeltaStreams: a delta stream waits in receiving, which its
// handler cannot leave on its own; stopping the control plane closes its
// connection, so Run returns without waiting out the shutdown grace.
func TestStopEndsDeltaStreams(t *testing.T) {
	forEachXDSServer(t, testStopEndsDeltaStreams)
}

func testStopEndsDeltaStreams(t *testing.T, server string) {
	s, stop := stoppableServer(t, Config{ShutdownGrace: time.Hour, XDSServer: server})
	c := dialDelta(t, s.XDSAddr().String())
	c.send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "web-1-sidecar-proxy"}, TypeUrl: resourcev3.ListenerType})
	c.ack(c.recv())

	stop(time.Minute, "an open delta stream")
	if _, err := c.stream.Recv(); err == nil {
		t.Fatal("the delta stream is still open after the control plane stopped")
	}
}

// countGoroutines counts the goroutines of a full dump (pprof debug=2)
// with fn in their stacks.
func countGoroutines(stacks, fn string) int {
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// stoppableServer runs a control plane with cfg serving testCatalog, for
// a test of its stop: stop cancels Run and fails the test unless Run
// returns within the given time (what names what it would wait for).
func stoppableServer(t *testing.T, cfg Config) (*Server, func(within time.Duration, what string)) {
	t.Helper()
	cfg.XDSAddr, cfg.AdminAddr = "127.0.0.1:0", "-"
	cfg.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := make(chanSource, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, src) }()
	<-s.Ready()
	src <- testCatalog()
	return s, func(within time.Duration, what string) {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(within):
			t.Fatalf("Run still waits for %s %v after the stop", what, within)
		}
	}
}
