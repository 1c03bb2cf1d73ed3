package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestSidecarFor runs web's sidecar as `weft-proxy --sidecar-for web-1`,
// as `consul connect envoy -sidecar-for` runs Envoy: the control plane
// names the one sidecar registered for the instance, and the sidecar
// serves as `--proxy-id web-1-sidecar-proxy` would. An instance with two
// registered sidecars is refused at once, naming both.
func TestSidecarFor(t *testing.T) {
	m := newMesh(t)
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	m.hits["api-1"] = &atomic.Int64{}
	m.register(t, "api-1", "api", startNameServer(t, "api-1", m.hits["api-1"]), nil)
	m.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort},
	})
	m.startProxy(t, "api-1-sidecar-proxy")

	admin := addr(freePort(t))
	startProcess(t, "web-1-sidecar-for", "weft-proxy", "--sidecar-for", "web-1", "--xds-addr", m.xdsAddr,
		"--admin-addr", admin, "--log-level", "debug")
	waitHTTP200(t, "http://"+admin+"/ready", 30*time.Second)
	consultest.WaitForPassing(t, m.consul.Client(), "api", 1)
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 3, true, "api-1")
	poll.Until(t, 10*time.Second, "the control plane sees web-1-sidecar-proxy connected", func() error {
		out, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, "web-1-sidecar-proxy").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "web-1-sidecar-proxy") {
			return fmt.Errorf("proxy-status: %v\n%s", err, out)
		}
		return nil
	})

	// A second sidecar registered for web-1: the answer is ambiguous.
	extra := &api.AgentServiceRegistration{
		Kind: api.ServiceKindConnectProxy, ID: "web-1-extra-proxy", Name: "web-sidecar-proxy", Port: freePort(t), Address: "127.0.0.1",
		Proxy: &api.AgentServiceConnectProxyConfig{DestinationServiceName: "web", DestinationServiceID: "web-1", LocalServicePort: freePort(t)},
	}
	if err := m.consul.Client().Agent().ServiceRegister(extra); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "--sidecar-for web-1 refused with two sidecars", func() error {
		// Until the control plane has seen the second registration, the
		// sidecar resolves and runs: the deadline ends it, and we ask again.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "weft-proxy"), "--sidecar-for", "web-1", "--xds-addr", m.xdsAddr,
			"--admin-addr", addr(freePort(t))).CombinedOutput()
		want := `service instance "web-1" has 2 sidecar proxies registered (web-1-extra-proxy, web-1-sidecar-proxy)`
		if err == nil || !strings.Contains(string(out), want) {
			return fmt.Errorf("exit %v, output %q; want a failure saying %q", err, out, want)
		}
		return nil
	})
}
