package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/poll"
)

// TestNotAppliedFieldIsReported: config-entry fields that weft-proxy does
// not apply, written to a real Consul, are never silent (docs/consul.md).
// service-defaults MaxInboundConnections and a proxy-defaults Envoy escape
// hatch show on the affected proxy in `weft proxy-status`, and the control
// plane logs each entry once per version: again when the entry changes,
// not when something else does. An exported-services entry exporting to a
// peer is applied (the mesh gateways route it), so it is not logged.
func TestNotAppliedFieldIsReported(t *testing.T) {
	m := newMesh(t)
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http", MaxInboundConnections: 10})
	m.setEntry(t, &api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
		Config: map[string]any{"envoy_extra_static_clusters_json": `{"name":"extra"}`}})
	m.setEntry(t, &api.ExportedServicesConfigEntry{Name: "default",
		Services: []api.ExportedService{{Name: "api", Consumers: []api.ServiceConsumer{{Peer: "dc2"}}}}})
	m.register(t, "api-1", "api", freePort(t), nil)
	m.startProxy(t, "api-1-sidecar-proxy")

	weft := filepath.Join(binDir, "weft")
	const id = "api-1-sidecar-proxy"
	wantProblems := []string{
		`service-defaults "api": not supported and left out: MaxInboundConnections = "10"`,
		`proxy-defaults: not supported and left out: Config.envoy_extra_static_clusters_json = "{\"name\":\"extra\"}" (an Envoy escape hatch; weft-proxy is not Envoy)`,
	}
	poll.Until(t, 30*time.Second, "the fields not applied in weft proxy-status", func() error {
		out, err := exec.Command(weft, "proxy-status", "--admin-addr", m.cpAdmin, id).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, want := range wantProblems {
			if !strings.Contains(string(out), want) {
				return fmt.Errorf("no %q yet:\n%s", want, out)
			}
		}
		t.Logf("weft proxy-status %s:\n%s", id, out)
		return nil
	})
	table, err := exec.Command(weft, "proxy-status", "--admin-addr", m.cpAdmin).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^`+id+`\s.*\s2$`).Match(table) {
		t.Errorf("weft proxy-status table does not count 2 problems for %s (%v):\n%s", id, err, table)
	}

	// Another change of the catalog: nothing is logged again.
	m.register(t, "web-1", "web", freePort(t), nil)
	m.startProxy(t, "web-1-sidecar-proxy")
	poll.Until(t, 30*time.Second, "web's proxy-defaults problem in weft proxy-status", func() error {
		out, err := exec.Command(weft, "proxy-status", "--admin-addr", m.cpAdmin, "web-1-sidecar-proxy").CombinedOutput()
		if err != nil || !strings.Contains(string(out), wantProblems[1]) {
			return fmt.Errorf("%v:\n%s", err, out)
		}
		return nil
	})
	// A new version of the entry is logged once more.
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http", MaxInboundConnections: 20})
	poll.Until(t, 30*time.Second, "the new version of service-defaults api logged", func() error {
		if n := len(notAppliedLogLines(t, m, "kind=service-defaults name=api")); n != 2 {
			return fmt.Errorf("%d log lines for service-defaults api, want 2", n)
		}
		return nil
	})

	sd := notAppliedLogLines(t, m, "kind=service-defaults name=api")
	if !strings.Contains(sd[0], `MaxInboundConnections = \"10\"`) || !strings.Contains(sd[1], `MaxInboundConnections = \"20\"`) {
		t.Errorf("service-defaults api log lines are not of versions 10 then 20:\n%s", strings.Join(sd, "\n"))
	}
	if got := notAppliedLogLines(t, m, "kind=proxy-defaults name=global"); len(got) != 1 {
		t.Errorf("proxy-defaults logged %d times, want once:\n%s", len(got), strings.Join(got, "\n"))
	}
	if got := notAppliedLogLines(t, m, "kind=exported-services"); len(got) != 0 {
		t.Errorf("an export to a peer, which is applied, logged as not applied:\n%s", strings.Join(got, "\n"))
	}
}

// notAppliedLogLines are the control plane's log lines about fields a
// config entry sets that are not applied, for the entry that has match.
func notAppliedLogLines(t *testing.T, m *mesh, match string) []string {
	t.Helper()
	b, err := os.ReadFile(m.controlPlane.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "config entry sets fields Weft does not apply") && strings.Contains(line, match) {
			out = append(out, line)
		}
	}
	return out
}
