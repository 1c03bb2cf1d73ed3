package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestIngressGatewayReportsBadEntries: an ingress-gateway entry with one
// good listener and a bad element is served for what is good, and the bad
// element is named in `weft proxy-status <gateway>` and in the control
// plane's log, while the good route answers 200 throughout:
//   - a service that has no instance in the mesh (Consul accepts it: it
//     checks protocols on write, not instances) is a problem naming the
//     service and the listener's port; its route is kept;
//   - two listeners on one port Consul refuses on write, so they never
//     reach Weft (the translation's own check is
//     translate.TestIngressGatewayReportsBadListeners);
//   - a listener on a port another process holds on the gateway's host,
//     which Consul cannot know, is refused by the gateway (a NACK naming
//     the listener), which keeps its previous configuration.
//
// Fixing the entry clears the problem.
func TestIngressGatewayReportsBadEntries(t *testing.T) {
	m := newMesh(t)
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	m.hits["api-1"] = &atomic.Int64{}
	m.register(t, "api-1", "api", startNameServer(t, "api-1", m.hits["api-1"]), nil)
	m.hits["echo-1"] = &atomic.Int64{}
	m.register(t, "echo-1", "echo", startEchoServer(t, m.hits["echo-1"]), nil)
	for _, id := range []string{"api-1", "echo-1"} {
		m.startProxy(t, id+"-sidecar-proxy")
	}
	httpPort, tcpPort := freePort(t), freePort(t)
	good := api.IngressListener{Port: httpPort, Protocol: "http", Services: []api.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}}}
	tcpTo := func(port int, service string) api.IngressListener {
		return api.IngressListener{Port: port, Protocol: "tcp", Services: []api.IngressService{{Name: service}}}
	}
	ingress := func(listeners ...api.IngressListener) *api.IngressGatewayConfigEntry {
		return &api.IngressGatewayConfigEntry{Kind: api.IngressGateway, Name: "ingress", Listeners: listeners}
	}
	m.setEntry(t, ingress(good, tcpTo(tcpPort, "nosuch")))
	out, err := exec.Command(filepath.Join(binDir, "weft"), "register", "--gateway", "ingress", "--name", "ingress", "--id", "ingress-1",
		"--address", "127.0.0.1", "--consul-addr", m.consul.HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("weft register --gateway ingress: %v\n%s", err, out)
	}
	m.startProxy(t, "ingress-1")
	consultest.WaitForPassing(t, m.consul.Client(), "api", 1)

	client := &http.Client{Timeout: 5 * time.Second}
	getAPI := func() error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/", nil)
		req.Host = "api.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if body := strings.TrimSpace(mustRead(resp)); resp.StatusCode != http.StatusOK || body != "api-1" {
			return fmt.Errorf("GET api.example.com: %d %q", resp.StatusCode, body)
		}
		return nil
	}
	poll.UntilStreak(t, 30*time.Second, "the good route reaches api five times in a row", 5, getAPI)
	probe := probeUntilStopped(getAPI)

	// The unknown service: named with its listener, in proxy-status and
	// in the control plane's log; its listener is there.
	unknown := fmt.Sprintf(`listener %d: service "nosuch" has no instance in the mesh`, tcpPort)
	pollProxyStatus(t, m, "ingress-1", "the unknown service in weft proxy-status", unknown)
	if lines := controlPlaneLogLines(t, m, "registration only partly translated", "proxy=ingress-1", strings.ReplaceAll(unknown, `"`, `\"`)); len(lines) != 1 {
		t.Errorf("the control plane logged the unknown service %d times, want once:\n%s", len(lines), strings.Join(lines, "\n"))
	}

	// Two listeners on one port: Consul refuses the entry.
	if _, _, err := m.consul.Client().ConfigEntries().Set(ingress(good, tcpTo(tcpPort, "nosuch"), tcpTo(tcpPort, "echo")), nil); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("port %d declared on two listeners", tcpPort)) {
		t.Errorf("Consul on two listeners of port %d: %v; want it refused", tcpPort, err)
	}

	// A listener on a port taken on the gateway's host: refused by the
	// gateway, which names it; the control plane logs the NACK.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	heldPort := held.Addr().(*net.TCPAddr).Port
	m.setEntry(t, ingress(good, tcpTo(tcpPort, "nosuch"), tcpTo(heldPort, "echo")))
	heldListener := fmt.Sprintf("ingress:127.0.0.1:%d", heldPort)
	pollProxyStatus(t, m, "ingress-1", "the gateway's NACK of the taken port in weft proxy-status", "last NACK", heldListener, "address already in use")
	if lines := controlPlaneLogLines(t, m, "proxy rejected configuration", "proxy=ingress-1", heldListener, "address already in use"); len(lines) == 0 {
		t.Errorf("the control plane did not log the NACK of listener %s", heldListener)
	}

	// Fixed: the tcp listener names echo, the taken port is gone.
	m.setEntry(t, ingress(good, tcpTo(tcpPort, "echo")))
	poll.UntilStreak(t, 30*time.Second, "echo through the fixed tcp listener five times in a row", 5, func() error {
		if got, err := echo(addr(tcpPort), []byte("ping")); err != nil || !bytes.Equal(got, []byte("ping")) {
			return fmt.Errorf("echo: %q, %v", got, err)
		}
		return nil
	})
	status, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, "ingress-1").CombinedOutput()
	if err != nil || strings.Contains(string(status), "problems") {
		t.Errorf("weft proxy-status ingress-1 after the fix still has problems (%v):\n%s", err, status)
	}
	if n, failures := probe(); n == 0 || len(failures) > 0 {
		t.Errorf("the good route, probed %d times while the entry was bad: %d failed: %q", n, len(failures), failures)
	}
}

// probeUntilStopped calls get every 20 ms from another goroutine until
// the returned stop is called, which returns the number of calls and the
// errors.
func probeUntilStopped(get func() error) (stop func() (int, []string)) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		n        int
		failures []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n++
			if err := get(); err != nil {
				failures = append(failures, err.Error())
			}
		}
	}()
	return func() (int, []string) {
		cancel()
		wg.Wait()
		return n, failures
	}
}

// pollProxyStatus waits until `weft proxy-status <id>` shows every want.
func pollProxyStatus(t *testing.T, m *mesh, id, what string, want ...string) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, func() error {
		out, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, id).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				return fmt.Errorf("no %q yet:\n%s", w, out)
			}
		}
		t.Logf("weft proxy-status %s:\n%s", id, out)
		return nil
	})
}

// controlPlaneLogLines are the lines of the control plane's log that
// contain every one of match.
func controlPlaneLogLines(t *testing.T, m *mesh, match ...string) []string {
	t.Helper()
	b, err := os.ReadFile(m.controlPlane.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if containsAll(line, match) {
			out = append(out, line)
		}
	}
	return out
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
