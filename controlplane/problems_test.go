package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/syncbuf"
)

// withNotApplied is testCatalog with web's service-defaults setting a
// field Weft does not apply, at version index of the entry.
func withNotApplied(version, index uint64) *catalog.Snapshot {
	snap := testCatalog()
	snap.Version = version
	snap.ServiceDefaults = map[string]*catalog.ServiceDefaults{"web": {Name: "web",
		Unsupported: []string{`MaxInboundConnections = "10"`}, ModifyIndex: index}}
	return snap
}

const webNotApplied = `proxy "web-1-sidecar-proxy": service-defaults "web": not supported and left out: MaxInboundConnections = "10"`

// TestProxiesShowProblems checks that GET /proxies lists, for a connected
// proxy, the problems of its translation.
func TestProxiesShowProblems(t *testing.T) {
	s, src := startServer(t)
	src <- withNotApplied(1, 5)

	ads, ctx := adsClient(t, s)
	openSotWListeners(t, ads, ctx, "web-1-sidecar-proxy")
	poll.Until(t, 10*time.Second, "web's problems in /proxies", func() error {
		var proxies []ProxyStatus
		getJSON(t, "http://"+s.AdminAddr().String()+"/proxies", &proxies)
		if len(proxies) != 1 || len(proxies[0].Problems) != 1 || proxies[0].Problems[0] != webNotApplied {
			return fmt.Errorf("/proxies = %+v", proxies)
		}
		return nil
	})
}

// TestNotAppliedLoggedOncePerEntryVersion checks that an entry's fields not
// applied are logged once when it appears, not again on a catalog change
// that leaves the entry as it was, and once more for each new version of
// the entry; never once per proxy.
func TestNotAppliedLoggedOncePerEntryVersion(t *testing.T) {
	logs := &lockedBuffer{t: t}
	s, err := New(Config{XDSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	src := make(chanSource, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, src) }()
	t.Cleanup(func() { cancel(); <-done })

	second := withNotApplied(2, 5) // another change: web gains an upstream
	second.Proxies["web-1-sidecar-proxy"].Upstreams = append(second.Proxies["web-1-sidecar-proxy"].Upstreams,
		catalog.Upstream{DestinationName: "db", LocalBindAddress: "127.0.0.1", LocalBindPort: 9292})
	for _, snap := range []*catalog.Snapshot{withNotApplied(1, 5), second, withNotApplied(3, 6)} {
		src <- snap
		poll.Until(t, 10*time.Second, fmt.Sprintf("catalog version %d published", snap.Version), func() error {
			if got := s.state.catalog.Load(); got == nil || got.Version != snap.Version {
				return fmt.Errorf("published %+v", got)
			}
			return nil
		})
	}
	var got []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "MaxInboundConnections") {
			got = append(got, line)
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], "modify_index=5") || !strings.Contains(got[1], "modify_index=6") {
		t.Fatalf("want one log line for index 5, then one for index 6; got:\n%s", strings.Join(got, "\n"))
	}
	for _, want := range []string{"kind=service-defaults", "name=web", `fields="MaxInboundConnections = \"10\""`} {
		if !strings.Contains(got[0], want) {
			t.Errorf("log line lacks %s: %s", want, got[0])
		}
	}
}

// lockedBuffer collects a server's log lines, which its goroutines write,
// and passes them on to the test's log.
type lockedBuffer struct {
	t *testing.T
	syncbuf.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return l.Buffer.Write(p)
}

// openSotWListeners opens a state-of-the-world ADS stream as node and
// receives its first listener response.
func openSotWListeners(t *testing.T, ads discoveryv3.AggregatedDiscoveryServiceClient, ctx context.Context, node string) (discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, *discoveryv3.DiscoveryResponse) {
	t.Helper()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return stream, resp
}
