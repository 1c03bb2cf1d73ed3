package vm

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestVM walks docs/vm.md with a real Consul agent: the control plane runs;
// weft register puts api-1 and web-1 (with upstream api) and their sidecars
// in Consul; each sidecar runs as its weft-proxy@ unit would; web's app
// reaches api through both sidecars; a second instance joins with
// weft register --wait and leaves on SIGTERM; weft deregister takes api-1
// out of Consul, and traffic to api stops.
func TestVM(t *testing.T) {
	consul := consultest.Start(t)
	client := consul.Client()
	env := []string{"CONSUL_HTTP_ADDR=" + consul.HTTPAddr}
	if _, _, err := client.ConfigEntries().Set(&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"}, nil); err != nil {
		t.Fatal(err)
	}

	xds, cpAdmin := addr(freePort(t)), addr(freePort(t))
	startDaemon(t, "control-plane", env, "weft", "control-plane", "--xds-addr", xds, "--admin-addr", cpAdmin, "--ca-dir", t.TempDir())
	waitOK(t, "http://"+cpAdmin+"/ready")

	apiPort, upstreamPort := startApp(t, "api-1"), freePort(t)
	out := weft(t, env, "register", "--name", "api", "--id", "api-1", "--address", "127.0.0.1",
		"--port", strconv.Itoa(apiPort), "--sidecar-port", strconv.Itoa(freePort(t)), "--protocol", "http")
	if !strings.Contains(out, "registered api-1 (service api) and its sidecar api-1-sidecar-proxy") {
		t.Errorf("weft register said %q", out)
	}
	weft(t, env, "register", "--name", "web", "--id", "web-1", "--address", "127.0.0.1", "--port", strconv.Itoa(startApp(t, "web-1")),
		"--sidecar-port", strconv.Itoa(freePort(t)), "--upstreams", "api:"+strconv.Itoa(upstreamPort))
	for _, id := range []string{"api-1-sidecar-proxy", "web-1-sidecar-proxy"} {
		startProxy(t, id, xds)
	}
	consultest.WaitForPassing(t, client, "api", 1)

	upstream := "http://" + addr(upstreamPort) + "/"
	poll.Until(t, 30*time.Second, "web → api through both sidecars", func() error { return wantBody(upstream, "api-1") })

	t.Run("a second instance with register --wait joins and leaves", func(t *testing.T) {
		keeper := startDaemon(t, "register-api-2", env, "weft", "register", "--wait", "--refresh-interval", "500ms",
			"--name", "api", "--id", "api-2", "--address", "127.0.0.1", "--port", strconv.Itoa(startApp(t, "api-2")),
			"--sidecar-port", strconv.Itoa(freePort(t)), "--protocol", "http")
		startProxy(t, "api-2-sidecar-proxy", xds)
		consultest.WaitForPassing(t, client, "api", 2)
		poll.Until(t, 30*time.Second, "api-2 serves through the mesh", func() error { return wantBody(upstream, "api-2") })
		keeper.Stop()
		poll.Until(t, 10*time.Second, "api-2 deregistered on SIGTERM", func() error { return gone(client, "api-2") })
	})

	out = weft(t, env, "deregister", "api-1")
	if !strings.Contains(out, "deregistered api-1 and its sidecar api-1-sidecar-proxy") {
		t.Errorf("weft deregister said %q", out)
	}
	if err := gone(client, "api-1"); err != nil {
		t.Fatal(err)
	}
	entries, _, err := client.Health().Service("api", "", false, nil)
	if err != nil || len(entries) != 0 {
		t.Errorf("catalog still has api: %d entries, %v", len(entries), err)
	}
	// Every api instance left at once without failing a check: the
	// control plane's endpoint panic guard holds the removal for its
	// grace (--consul-removal-grace, 30 s) before applying it.
	poll.Until(t, 60*time.Second, "web's upstream api has no endpoint once the removal grace ends", func() error {
		code, body, err := get(upstream)
		if err != nil || code != http.StatusServiceUnavailable {
			return fmt.Errorf("%d %q %v, want 503", code, body, err)
		}
		return nil
	})
}

func startProxy(t *testing.T, id, xds string) {
	t.Helper()
	admin := addr(freePort(t))
	startDaemon(t, id, nil, "weft-proxy", "--proxy-id", id, "--xds-addr", xds, "--admin-addr", admin)
	waitOK(t, "http://"+admin+"/ready")
}

// gone checks the agent holds neither the service nor its sidecar.
func gone(client *api.Client, id string) error {
	services, err := client.Agent().Services()
	if err != nil {
		return err
	}
	for _, sid := range []string{id, id + "-sidecar-proxy"} {
		if _, ok := services[sid]; ok {
			return fmt.Errorf("%s is still registered", sid)
		}
	}
	return nil
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	poll.Until(t, 30*time.Second, "GET "+url, func() error {
		code, body, err := get(url)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
}

// wantBody GETs url until one answer is want (instances alternate).
func wantBody(url, want string) error {
	code, body, err := get(url)
	if err != nil {
		return err
	}
	if code != http.StatusOK || body != want {
		return fmt.Errorf("%d %q, want %q", code, body, want)
	}
	return nil
}

func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}
