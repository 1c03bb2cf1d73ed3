package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestProxyStatusShowsNACK: a listener the sidecar cannot bind (its port
// is taken) is rejected; `weft proxy-status` shows the NACK with the
// error, `weft config-dump` the listener the control plane serves, and
// the sidecar counts the NACK and keeps serving its previous listeners.
func TestProxyStatusShowsNACK(t *testing.T) {
	m := newMesh(t)
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	m.hits["api-1"] = &atomic.Int64{}
	m.register(t, "api-1", "api", startNameServer(t, "api-1", m.hits["api-1"]), nil)
	apiUpstream := api.Upstream{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort}
	webApp := freePort(t)
	m.register(t, "web-1", "web", webApp, []api.Upstream{apiUpstream})
	m.startProxy(t, "api-1-sidecar-proxy")
	m.startProxy(t, "web-1-sidecar-proxy")
	consultest.WaitForPassing(t, m.consul.Client(), "api", 1)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d/", m.apiPort)
	waitHTTP200(t, apiURL, 30*time.Second)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	bad := fmt.Sprintf("ghost:127.0.0.1:%d", port)
	m.register(t, "web-1", "web", webApp, []api.Upstream{apiUpstream,
		{DestinationName: "ghost", LocalBindAddress: "127.0.0.1", LocalBindPort: port}})

	weft := filepath.Join(binDir, "weft")
	const id = "web-1-sidecar-proxy"
	poll.Until(t, 30*time.Second, "the NACK in weft proxy-status", func() error {
		out, err := exec.Command(weft, "proxy-status", "--admin-addr", m.cpAdmin, id).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		s := string(out)
		if !strings.Contains(s, "last NACK") || !strings.Contains(s, bad) || !strings.Contains(s, "address already in use") {
			return fmt.Errorf("no NACK of listener %s with its bind error yet:\n%s", bad, s)
		}
		t.Logf("weft proxy-status %s:\n%s", id, s)
		return nil
	})
	table, err := exec.Command(weft, "proxy-status", "--admin-addr", m.cpAdmin).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^`+id+`\s.*NACKED.*LDS`).Match(table) {
		t.Errorf("weft proxy-status table does not show %s's listeners NACKED (%v):\n%s", id, err, table)
	}

	dump, err := exec.Command(weft, "config-dump", "--admin-addr", m.cpAdmin, "--type", "Listener", id).CombinedOutput()
	if err != nil || !strings.Contains(string(dump), `"`+bad+`"`) {
		t.Errorf("weft config-dump --type Listener %s lacks %s (%v):\n%s", id, bad, err, dump)
	}

	if n := metricValue(t, m.proxyAdmin[id], `weft_proxy_xds_nacks_total{type="Listener"}`); n < 1 {
		t.Errorf("weft_proxy_xds_nacks_total{type=\"Listener\"} = %v, want ≥ 1", n)
	}
	waitHTTP200(t, apiURL, 10*time.Second) // the accepted listeners still serve
}

// metricValue returns the value of one series on a sidecar's /metrics.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics of %s has no %s", admin, series)
	return 0
}
