package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// peeredMeshes are two Weft meshes, each a Consul cluster of its own
// datacenter with its own control plane, both on Consul's CA (which
// peering needs: Consul exchanges its roots through the peering), and
// peered: dc2 accepted the peering, naming its peer "dc1"; dc1 dialed,
// naming its peer "dc2".
func peeredMeshes(t *testing.T) (dc1, dc2 *mesh) {
	t.Helper()
	opts := func(dc string) meshOptions {
		return meshOptions{caProvider: "consul", consul: []consultest.Option{consultest.WithDatacenter(dc), consultest.WithPeering()}}
	}
	dc1, dc2 = newMesh(t, opts("dc1")), newMesh(t, opts("dc2"))
	consultest.Peer(t, dc2.consul, "dc1", dc1.consul, "dc2")
	return dc1, dc2
}

// registerMeshGateway registers a mesh gateway with `weft register
// --gateway mesh`, as Consul's own are (kind mesh-gateway, LAN and WAN
// addresses, a TCP check of its port), and runs weft-proxy for it.
func (m *mesh) registerMeshGateway(t *testing.T, id string) int {
	t.Helper()
	port := freePort(t)
	out, err := exec.Command(filepath.Join(binDir, "weft"), "register", "--gateway", "mesh", "--name", "mesh-gateway", "--id", id,
		"--address", "127.0.0.1", "--port", strconv.Itoa(port), "--consul-addr", m.consul.HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered mesh gateway "+id) {
		t.Fatalf("weft register --gateway mesh: %v\n%s", err, out)
	}
	m.startProxy(t, id)
	return port
}

// exportWithGateway runs one instance of service (id, serving on
// appPort) with its sidecar and a mesh gateway (gatewayID) in m, exports
// the service to peer, and waits until the instance passes.
func (m *mesh) exportWithGateway(t *testing.T, service, id string, appPort int, gatewayID, peer string) {
	t.Helper()
	m.register(t, id, service, appPort, nil)
	m.startProxy(t, id+"-sidecar-proxy")
	m.registerMeshGateway(t, gatewayID)
	m.setEntry(t, &api.ExportedServicesConfigEntry{Name: "default", Services: []api.ExportedService{
		{Name: service, Consumers: []api.ServiceConsumer{{Peer: peer}}},
	}})
	consultest.WaitForPassing(t, m.consul.Client(), service, 1)
}

// TestPeeringThroughMeshGateway: web in dc1 calls api, which dc2 exports
// to dc1, through dc2's mesh gateway — a weft-proxy that routes by SNI and
// passes the sidecars' mTLS through — with each side verifying the other
// with the roots Consul exchanged through the peering.
func TestPeeringThroughMeshGateway(t *testing.T) {
	dc1, dc2 := peeredMeshes(t)

	dc2.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	dc2.hits["api-1"] = &atomic.Int64{}
	dc2.exportWithGateway(t, "api", "api-1", startNameServer(t, "api-1", dc2.hits["api-1"]), "mesh-gateway-1", "dc1")

	dc1.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "api", DestinationPeer: "dc2", LocalBindAddress: "127.0.0.1", LocalBindPort: dc1.apiPort},
	})
	dc1.startProxy(t, "web-1-sidecar-proxy")

	c := newCaller(t, dc1.apiPort)
	poll.UntilStreak(t, 60*time.Second, "web in dc1 reaches api in dc2 five times in a row", 5, func() error {
		who, err := c.call()
		if err != nil || who != "api-1" {
			return fmt.Errorf("call: %q, %v", who, err)
		}
		return nil
	})
	if got := c.tally(100); got["api-1"] != 100 {
		t.Fatalf("100 calls across the peering: %v", got)
	}

	// The gateway holds no certificate and terminates nothing: its one
	// listener routes by SNI, and it never asked for a leaf.
	gw := dc2.proxyAdmin["mesh-gateway-1"]
	var listeners []struct {
		Name, Mode string
	}
	getJSON(t, "http://"+gw+"/listeners", &listeners)
	if len(listeners) != 1 || listeners[0].Mode != "sni" {
		t.Errorf("gateway listeners %+v, want one in mode sni", listeners)
	}
	var certs struct {
		Identity struct {
			Leaf *json.RawMessage `json:"leaf"`
		} `json:"identity"`
	}
	getJSON(t, "http://"+gw+"/certs", &certs)
	if certs.Identity.Leaf != nil {
		t.Errorf("the mesh gateway holds a leaf certificate: %s", *certs.Identity.Leaf)
	}
	if n := gatewayConnections(t, gw); n == 0 {
		t.Errorf("the gateway's TCP counters show no connection: the calls did not pass through it")
	}
	status, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", dc2.cpAdmin, "mesh-gateway-1").CombinedOutput()
	if err != nil || !strings.Contains(string(status), "mesh-gateway routes:") || !strings.Contains(string(status), "→ api (exported to peer dc1), TLS passed through") {
		t.Errorf("weft proxy-status of the mesh gateway: %v\n%s", err, status)
	}

	// An intention in dc2 denying web of peer dc1: its calls get 403
	// rbac_denied from api's sidecar, through both clusters.
	dc2.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api", Sources: []*api.SourceIntention{
		{Name: "web", Peer: "dc1", Action: api.IntentionActionDeny},
	}})
	poll.UntilStreak(t, 30*time.Second, "the peer intention denies five calls in a row", 5, func() error {
		code, reason, err := rawGet(addr(dc1.apiPort), "/")
		if err != nil || code != http.StatusForbidden || reason != "rbac_denied" {
			return fmt.Errorf("GET: %d %q %v", code, reason, err)
		}
		return nil
	})
	// A deny of web of this mesh, dc2's own, does not concern dc1's web.
	dc2.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api", Sources: []*api.SourceIntention{
		{Name: "web", Action: api.IntentionActionDeny},
	}})
	poll.UntilStreak(t, 30*time.Second, "a local deny leaves the peer's web allowed", 5, func() error {
		who, err := c.call()
		if err != nil || who != "api-1" {
			return fmt.Errorf("call: %q, %v", who, err)
		}
		return nil
	})

	// MeshGateway.Mode local in dc1: web's sidecar dials dc1's own mesh
	// gateway, which passes the TLS on to dc2's by its SNI: the calls
	// cross both gateways.
	before := gatewayConnections(t, gw)
	dc1.registerMeshGateway(t, "mesh-gateway-dc1")
	dc1.setEntry(t, &api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
		MeshGateway: api.MeshGatewayConfig{Mode: api.MeshGatewayModeLocal}})
	gw1 := dc1.proxyAdmin["mesh-gateway-dc1"]
	poll.UntilStreak(t, 30*time.Second, "calls through dc1's gateway, five in a row", 5, func() error {
		who, err := c.call()
		if err != nil || who != "api-1" {
			return fmt.Errorf("call: %q, %v", who, err)
		}
		if gatewayConnections(t, gw1) == 0 {
			// web's app may still hold a connection its sidecar accepted
			// before the switch, whose upstream stays where it was.
			c.client.CloseIdleConnections()
			return fmt.Errorf("dc1's gateway passed no connection yet")
		}
		return nil
	})
	if got := c.tally(100); got["api-1"] != 100 {
		t.Fatalf("100 calls through both gateways: %v", got)
	}
	if after := gatewayConnections(t, gw); after <= before {
		t.Errorf("dc2's gateway passed no new connection (%v before, %v after): the calls did not reach it", before, after)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// gatewayConnections sums the gateway's downstream TCP connections from
// its Prometheus metrics.
func gatewayConnections(t *testing.T, admin string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var n float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "weft_proxy_tcp_connections_opened_total") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			n += v
		}
	}
	return n
}

// TestPeeringTCPIntention: echo (protocol tcp), exported by dc2 to dc1,
// echoes web's bytes through dc2's mesh gateway until an intention in dc2
// denies web of peer dc1: its connections are then refused by echo's
// sidecar (network RBAC, before a byte reaches the app). Deleting the
// intention lets them through again.
func TestPeeringTCPIntention(t *testing.T) {
	dc1, dc2 := peeredMeshes(t)

	hits := &atomic.Int64{}
	dc2.exportWithGateway(t, "echo", "echo-dc2", startEchoServer(t, hits), "mesh-gateway-dc2", "dc1")

	dc1.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "echo", DestinationPeer: "dc2", LocalBindAddress: "127.0.0.1", LocalBindPort: dc1.echoPort},
	})
	dc1.startProxy(t, "web-1-sidecar-proxy")

	payload := []byte("across the peering\n")
	echoed := func() error {
		got, err := echo(addr(dc1.echoPort), payload)
		if err != nil {
			return err
		}
		if string(got) != string(payload) {
			return fmt.Errorf("echoed %q", got)
		}
		return nil
	}
	poll.UntilStreak(t, 60*time.Second, "web's bytes echoed by dc2's echo five times in a row", 5, echoed)

	dc2.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "echo", Sources: []*api.SourceIntention{
		{Name: "web", Peer: "dc1", Action: api.IntentionActionDeny},
	}})
	before := hits.Load()
	poll.UntilStreak(t, 30*time.Second, "web of peer dc1 refused five times in a row", 5, func() error {
		if err := echoed(); err == nil {
			return fmt.Errorf("echoed: the deny is not applied yet")
		}
		return nil
	})
	// Once refused, nothing more reaches the app.
	refusedAt := hits.Load()
	for range 5 {
		if echoed() == nil {
			t.Fatal("a connection got through after the deny was applied")
		}
	}
	if hits.Load() != refusedAt {
		t.Errorf("echo's app got %d bytes after the deny was applied", hits.Load()-refusedAt)
	}
	t.Logf("echo's app echoed %d bytes between the intention's write and its enforcement", refusedAt-before)

	if _, err := dc2.consul.Client().ConfigEntries().Delete(api.ServiceIntentions, "echo", nil); err != nil {
		t.Fatal(err)
	}
	poll.UntilStreak(t, 30*time.Second, "echoed again once the intention is deleted", 5, echoed)
}
