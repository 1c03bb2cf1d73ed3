package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-mesh/weft/controlplane"
	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// replica is one control-plane replica of an HA pair.
type replica struct {
	proc       *testproc.Process
	xds, admin string
}

// startReplica runs a control plane on the shared Consul and CA directory,
// sending sidecars' spans to the shared collector address otlp: replicas
// must configure sidecars identically, and the default span endpoint is
// each replica's own address.
func startReplica(t *testing.T, name, consulAddr, caDir, otlp string) *replica {
	r := &replica{xds: addr(freePort(t)), admin: addr(freePort(t))}
	r.proc = startProcess(t, name, "weft", "control-plane", "--consul-addr", consulAddr, "--xds-addr", r.xds,
		"--admin-addr", r.admin, "--ca-dir", caDir, "--otlp-endpoint", otlp, "--log-level", "debug")
	waitHTTP200(t, "http://"+r.admin+"/ready", 30*time.Second)
	return r
}

// proxies is the replica's /proxies: what `weft proxy-status` shows.
func (r *replica) proxies() (map[string]controlplane.ProxyStatus, error) {
	resp, err := http.Get("http://" + r.admin + "/proxies")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list []controlplane.ProxyStatus
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	out := map[string]controlplane.ProxyStatus{}
	for _, p := range list {
		out[p.ID] = p
	}
	return out, nil
}

var allTypes = []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.RouteType, resourcev3.SecretType}

// adsVersions asks a control plane, over a fresh state-of-the-world ADS
// stream, for every type of node's configuration and returns the versions.
func adsVersions(xdsAddr, node string) (map[string]string, error) {
	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	for i, typ := range allTypes {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		if err := st.Send(req); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for len(out) < len(allTypes) {
		resp, err := st.Recv()
		if err != nil {
			return nil, fmt.Errorf("%s from %s: %w", node, xdsAddr, err)
		}
		out[resp.GetTypeUrl()] = resp.GetVersionInfo()
	}
	return out, nil
}

// TestHAReplicas runs two control-plane replicas on one Consul and one CA
// directory, with web → api sidecars given both xDS addresses:
//   - both replicas serve identical versions of every type to every proxy;
//   - under constant load, killing the replica the sidecars are attached to
//     fails no request, the sidecars re-attach to the survivor (its
//     proxy-status shows them with the versions they had), and
//   - a new instance started meanwhile gets its certificate from the
//     survivor and serves mTLS traffic, trusted by sidecars whose bundle
//     came from the killed replica.
func TestHAReplicas(t *testing.T) {
	m := bareMesh(t, meshOptions{})
	caDir := t.TempDir()
	// The first replica creates the root; the second loads the same one.
	otlp := addr(freePort(t))
	a := startReplica(t, "control-plane-a", m.consul.HTTPAddr, caDir, otlp)
	b := startReplica(t, "control-plane-b", m.consul.HTTPAddr, caDir, otlp)
	m.xdsAddr = a.xds + "," + b.xds

	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	for _, id := range []string{"api-1", "api-2"} {
		m.hits[id] = &atomic.Int64{}
	}
	m.register(t, "api-1", "api", startNameServer(t, "api-1", m.hits["api-1"]), nil)
	m.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort}})
	m.startProxy(t, "api-1-sidecar-proxy")
	m.startProxy(t, "web-1-sidecar-proxy")
	// Consul passes api-1 before the load starts: while it is critical
	// (its sidecar-listening check runs every 10 s) web's sidecar is in
	// panic mode, serving api-1 anyway, and would serve api-2 below before
	// its sidecar listens. Traffic reaching api-1 does not show it passing.
	consultest.WaitForPassing(t, m.consul.Client(), "api", 1)
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 5, true, "api-1")

	sidecars := []string{"web-1-sidecar-proxy", "api-1-sidecar-proxy"}
	poll.Until(t, 20*time.Second, "identical versions from both replicas", func() error {
		for _, id := range sidecars {
			va, err := adsVersions(a.xds, id)
			if err != nil {
				return err
			}
			vb, err := adsVersions(b.xds, id)
			if err != nil {
				return err
			}
			if !maps.Equal(va, vb) {
				return fmt.Errorf("%s: replica a serves %v, replica b %v", id, va, vb)
			}
		}
		return nil
	})

	// Both sidecars are attached to the first address.
	var before map[string]controlplane.ProxyStatus
	poll.Until(t, 20*time.Second, "sidecars attached to replica a", func() (err error) {
		if before, err = a.proxies(); err != nil {
			return err
		}
		for _, id := range sidecars {
			if p, ok := before[id]; !ok || p.Types[resourcev3.ListenerType] == nil || p.Types[resourcev3.ListenerType].AckedVersion == "" {
				return fmt.Errorf("%s not synced on replica a: %+v", id, before[id])
			}
		}
		return nil
	})

	load := startLoad(c)
	a.proc.Kill()

	poll.Until(t, 30*time.Second, "sidecars re-attached to replica b", func() error {
		after, err := b.proxies()
		if err != nil {
			return err
		}
		for _, id := range sidecars {
			got, want := after[id].Types[resourcev3.ListenerType], before[id].Types[resourcev3.ListenerType]
			if got == nil || got.AckedVersion != want.AckedVersion {
				return fmt.Errorf("%s on replica b: %+v; want listeners ACKed at %s", id, got, want.AckedVersion)
			}
		}
		return nil
	})
	out, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", b.admin, "web-1-sidecar-proxy").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "proxy web-1-sidecar-proxy: 1 stream(s)") {
		t.Fatalf("weft proxy-status on the surviving replica: %v\n%s", err, out)
	}

	// A new instance, started with replica a down, gets its leaf from b.
	m.register(t, "api-2", "api", startNameServer(t, "api-2", m.hits["api-2"]), nil)
	m.startProxy(t, "api-2-sidecar-proxy")
	// Consul's own health (its sidecar-listening check runs every 10 s)
	// first, so that the wait below measures only Weft's replica b.
	consultest.WaitForPassing(t, m.consul.Client(), "api", 2)
	poll.Until(t, 30*time.Second, "traffic reaches api-2", func() error {
		if m.hits["api-2"].Load() == 0 {
			return fmt.Errorf("api-2 served nothing yet")
		}
		return nil
	})

	ok, failed := load.stop()
	if failed != nil {
		t.Fatalf("%d requests failed during the failover; first: %v", len(failed), failed[0])
	}
	if ok < 50 {
		t.Fatalf("only %d requests completed during the failover; the load did not run", ok)
	}
	t.Logf("%d requests during the failover, none failed", ok)
}

// load sends requests one after another until stopped.
type load struct {
	stopc  chan struct{}
	wg     sync.WaitGroup
	ok     int
	failed []error
}

func startLoad(c *caller) *load {
	l := &load{stopc: make(chan struct{})}
	l.wg.Go(func() {
		for {
			select {
			case <-l.stopc:
				return
			default:
			}
			if _, err := c.call(); err != nil {
				l.failed = append(l.failed, err)
			} else {
				l.ok++
			}
		}
	})
	return l
}

// stop ends the load and returns how many requests succeeded and the
// errors of those that failed.
func (l *load) stop() (int, []error) {
	close(l.stopc)
	l.wg.Wait()
	return l.ok, l.failed
}
