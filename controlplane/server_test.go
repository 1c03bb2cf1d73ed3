package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
)

// chanSource is a CatalogSource fed by the test.
type chanSource chan *catalog.Snapshot

func (c chanSource) Snapshots() <-chan *catalog.Snapshot { return c }

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func startServer(t *testing.T) (*Server, chanSource) {
	t.Helper()
	return startServerWith(t, Config{})
}

// xdsServers are the xDS port's transports; tests of what clients see run
// against each.
var xdsServers = []string{XDSServerLean, XDSServerGRPC}

// forEachXDSServer runs test as a subtest per transport.
func forEachXDSServer(t *testing.T, test func(t *testing.T, server string)) {
	for _, server := range xdsServers {
		t.Run(server, func(t *testing.T) { test(t, server) })
	}
}

// startServerWith runs a server with cfg on loopback ports, logging to t.
func startServerWith(t *testing.T, cfg Config) (*Server, chanSource) {
	t.Helper()
	cfg.XDSAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := make(chanSource, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, src) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-s.Ready()
	return s, src
}

func testCatalog() *catalog.Snapshot {
	return &catalog.Snapshot{
		Version: 1, Datacenter: "dc1",
		Proxies: map[string]*catalog.Proxy{"web-1-sidecar-proxy": {
			ID: "web-1-sidecar-proxy", Address: "127.0.0.1", Port: 21000, DestinationName: "web",
			LocalAddress: "127.0.0.1", LocalPort: 8080,
			Upstreams: []catalog.Upstream{{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191}},
		}},
	}
}

// TestServerServesAndRecordsNack connects a raw ADS stream, receives the
// proxy's listeners, NACKs them, and checks the NACK is recorded for
// operators and is not answered with the same version again.
func TestServerServesAndRecordsNack(t *testing.T) {
	forEachXDSServer(t, testServerServesAndRecordsNack)
}

func testServerServesAndRecordsNack(t *testing.T, server string) {
	s, src := startServerWith(t, Config{XDSServer: server})
	src <- testCatalog()

	conn, err := grpc.NewClient(s.XDSAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "web-1-sidecar-proxy"}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Resources) != 2 {
		t.Fatalf("got %d listeners, want public + one upstream", len(resp.Resources))
	}
	nack := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: `listener "public_listener": test rejection`}}
	if err := stream.Send(nack); err != nil {
		t.Fatal(err)
	}

	poll.Until(t, 5*time.Second, "NACK visible in /proxies", func() error {
		var proxies []ProxyStatus
		getJSON(t, "http://"+s.AdminAddr().String()+"/proxies", &proxies)
		if len(proxies) == 1 {
			if ts := proxies[0].Types[resourcev3.ListenerType]; ts != nil && ts.LastNack != "" {
				if ts.LastNack != nack.ErrorDetail.Message {
					t.Fatalf("recorded NACK %q, want %q", ts.LastNack, nack.ErrorDetail.Message)
				}
				return nil
			}
		}
		return fmt.Errorf("/proxies: %+v", proxies)
	})

	metrics := getBody(t, "http://"+s.AdminAddr().String()+"/metrics")
	for _, want := range []string{`weft_cp_xds_nacks_total{type="Listener"} 1`, "weft_cp_connected_proxies 1", `weft_cp_xds_pushes_total{type="Listener"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The rejected version must not be re-sent: no response arrives until
	// the catalog changes.
	recv := make(chan *discoveryv3.DiscoveryResponse, 1)
	go func() {
		r, err := stream.Recv()
		if err == nil {
			recv <- r
		}
	}()
	changed := testCatalog()
	changed.Version = 2
	changed.Proxies["web-1-sidecar-proxy"].Upstreams[0].LocalBindPort = 9292
	src <- changed
	select {
	case r := <-recv:
		if r.VersionInfo == resp.VersionInfo {
			t.Fatalf("rejected version %s was sent again", r.VersionInfo)
		}
	case <-ctx.Done():
		t.Fatal("no update after the catalog changed")
	}
}

func TestReadyWaitsForCatalog(t *testing.T) {
	s, src := startServer(t)
	url := "http://" + s.AdminAddr().String() + "/ready"
	if code := getStatus(t, url); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready before any catalog = %d, want 503", code)
	}
	src <- testCatalog()
	poll.UntilTrue(t, 5*time.Second, "/ready 200 after a catalog was published", func() bool { return getStatus(t, url) == http.StatusOK })
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServerDelta serves the same snapshot over incremental ADS on the
// same port, and records the delta ACK's version.
func TestServerDelta(t *testing.T) {
	s, src := startServer(t)
	src <- testCatalog()
	conn, err := grpc.NewClient(s.XDSAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "web-1-sidecar-proxy"}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Resources) != 2 {
		t.Fatalf("delta response has %d listeners, want 2", len(resp.Resources))
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce}); err != nil {
		t.Fatal(err)
	}
	for {
		var proxies []ProxyStatus
		getJSON(t, "http://"+s.AdminAddr().String()+"/proxies", &proxies)
		if len(proxies) == 1 {
			if ts := proxies[0].Types[resourcev3.ListenerType]; ts != nil && ts.AckedVersion != "" {
				if ts.AckedVersion != resp.SystemVersionInfo {
					t.Fatalf("delta ACK recorded as %q, want %q", ts.AckedVersion, resp.SystemVersionInfo)
				}
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("delta ACK not recorded: %+v", proxies)
		}
	}
}
