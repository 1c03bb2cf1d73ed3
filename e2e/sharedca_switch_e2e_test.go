package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

// connectedProxies counts the sidecars with an ADS stream to the control
// plane (its /proxies).
func (m *mesh) connectedProxies(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + m.cpAdmin + "/proxies")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var proxies []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&proxies); err != nil {
		t.Fatal(err)
	}
	return len(proxies)
}

// TestSwitchToSharedCA moves a running Weft mesh from its own CA and trust
// domain to the CA shared with Consul, under steady load: the control
// plane restarts with --ca-provider consul on the same --ca-dir (its old
// root still signs, both trust domains are accepted, every bundle gains
// Consul's roots), then weft ca rotate makes the shared root sign in
// Consul's trust domain and drops the old root. No request fails, and
// every sidecar ends with a leaf in Consul's trust domain.
func TestSwitchToSharedCA(t *testing.T) {
	m := startMesh(t)
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 3, true, "api-1", "api-2")
	const web, api1 = "web-1-sidecar-proxy", "api-1-sidecar-proxy"
	if leaf := sidecarLeafID(t, m.proxyAdmin[web]); !strings.HasPrefix(leaf, "spiffe://weft.local/") {
		t.Fatalf("web's leaf before the switch: %s", leaf)
	}
	roots, _, err := m.consul.Client().Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	consulTD := "spiffe://" + roots.TrustDomain + "/"

	load := startSteadyLoad(t, m.apiPort, 2)
	if err := m.controlPlane.Stop(); err != nil {
		t.Fatal(err)
	}
	m.opts.caProvider = "consul"
	m.controlPlane = startProcess(t, "control-plane-shared", "weft", m.controlPlaneArgs()...)
	waitHTTP200(t, "http://"+m.cpAdmin+"/ready", 30*time.Second)
	if seen := c.tally(20); seen["api-1"]+seen["api-2"] != 20 {
		t.Fatalf("after the restart, 20 requests answered as %v", seen)
	}
	// As an operator would (weft proxy-status), start the switch once
	// every sidecar has reconnected and holds the bundle with both CAs.
	poll.Until(t, 30*time.Second, "every sidecar reconnected", func() error {
		if n := m.connectedProxies(t); n != len(m.proxies) {
			return fmt.Errorf("%d of %d sidecars connected", n, len(m.proxies))
		}
		return nil
	})

	resp, err := http.Post("http://"+m.cpAdmin+"/ca/rotate?timeout=2m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	progress, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(progress), "adding") && !strings.Contains(string(progress), "signing with the new root") {
		t.Fatalf("unexpected rotation steps:\n%s", progress)
	}
	resp.Body.Close()
	if !strings.Contains(string(progress), "done:") {
		t.Fatalf("the switch did not finish:\n%s", progress)
	}
	poll.Until(t, 30*time.Second, "every sidecar holds a leaf in Consul's trust domain", func() error {
		for _, id := range []string{web, api1, "api-2-sidecar-proxy", "echo-1-sidecar-proxy"} {
			if leaf := sidecarLeafID(t, m.proxyAdmin[id]); !strings.HasPrefix(leaf, consulTD) {
				return fmt.Errorf("%s holds %s", id, leaf)
			}
		}
		return nil
	})
	if seen := c.tally(50); seen["api-1"]+seen["api-2"] != 50 {
		t.Fatalf("after the switch, 50 requests answered as %v", seen)
	}
	ok, failed := load.stop()
	t.Logf("switch:\n%s\nsteady load: %d ok, %d failed", progress, ok, failed)
	if failed != 0 || ok < 50 {
		t.Fatalf("steady load across the switch: %d ok, %d failed; want 0 failed (and ≥ 50 sent)", ok, failed)
	}
}
