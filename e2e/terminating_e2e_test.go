package e2e

import (
	"crypto/tls"
	"fmt"
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
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestTerminatingGateway: services outside the mesh, registered in Consul
// without sidecars, are called through a terminating gateway run by
// weft-proxy (registered with `weft register --gateway terminating`). The
// gateway presents each linked service's identity to web's sidecar, which
// verifies it as for any mesh service; it enforces the linked service's
// intentions; and it forwards in plaintext to one service and originates
// TLS, verified with the entry's CAFile, to the other.
func TestTerminatingGateway(t *testing.T) {
	m := newMesh(t)
	client := m.consul.Client()
	hits := map[string]*atomic.Int64{"ext-1": {}, "secure-1": {}}
	extPort := startNameServer(t, "ext-1", hits["ext-1"])
	ca := pkitest.NewCA(t, "outside")
	caFile := filepath.Join(t.TempDir(), "outside-ca.pem")
	pkitest.WriteFile(t, caFile, ca.PEM())
	securePort := startTLSNameServer(t, "secure-1", hits["secure-1"], ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"secure.example.com"}}))
	for _, reg := range []*api.AgentServiceRegistration{
		{ID: "ext-1", Name: "ext", Address: "127.0.0.1", Port: extPort},
		{ID: "secure-1", Name: "secure", Address: "127.0.0.1", Port: securePort},
	} {
		if err := client.Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("register %s: %v", reg.ID, err)
		}
	}
	m.setEntry(t, &api.TerminatingGatewayConfigEntry{Kind: api.TerminatingGateway, Name: "tgw", Services: []api.LinkedService{
		{Name: "ext"},
		{Name: "secure", CAFile: caFile, SNI: "secure.example.com"},
	}})
	gwPort := freePort(t)
	out, err := exec.Command(filepath.Join(binDir, "weft"), "register", "--gateway", "terminating", "--name", "tgw", "--id", "tgw-1",
		"--address", "127.0.0.1", "--port", strconv.Itoa(gwPort), "--consul-addr", m.consul.HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered terminating gateway tgw-1") {
		t.Fatalf("weft register --gateway terminating: %v\n%s", err, out)
	}
	m.startProxy(t, "tgw-1")

	extBind, secureBind := freePort(t), freePort(t)
	m.hits["web-1"] = &atomic.Int64{}
	m.register(t, "web-1", "web", startNameServer(t, "web-1", m.hits["web-1"]), []api.Upstream{
		{DestinationName: "ext", LocalBindPort: extBind},
		{DestinationName: "secure", LocalBindPort: secureBind},
	})
	m.startProxy(t, "web-1-sidecar-proxy")
	// Consul answers for a linked service with its gateways; the
	// gateway's TCP check passes once it listens, and sidecars dial only
	// a passing gateway.
	consultest.WaitForPassing(t, client, "ext", 1)
	consultest.WaitForPassing(t, client, "secure", 1)

	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(port int) (string, error) {
		resp, err := httpClient.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		return strings.TrimSpace(mustRead(resp)), nil
	}
	for _, tt := range []struct {
		port int
		want string
	}{{extBind, "ext-1"}, {secureBind, "secure-1"}} {
		poll.UntilStreak(t, 30*time.Second, fmt.Sprintf("web reaches %s through the gateway five times in a row", tt.want), 5, func() error {
			body, err := get(tt.port)
			if err != nil || body != tt.want {
				return fmt.Errorf("GET: %q, %v", body, err)
			}
			return nil
		})
	}

	status, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, "tgw-1").CombinedOutput()
	if err != nil || !strings.Contains(string(status), "SNI ext.default."+consultest.Datacenter+" → ext, mTLS as ext, 1 of 1 instances healthy, plaintext") ||
		!strings.Contains(string(status), "TLS (CA "+caFile+", SNI secure.example.com)") {
		t.Errorf("weft proxy-status tgw-1: %v\n%s", err, status)
	}

	// A CA file that does not exist on the gateway's host: the gateway
	// refuses the cluster, naming the file, and proxy-status shows it; the
	// previous configuration keeps serving.
	missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
	m.setEntry(t, &api.TerminatingGatewayConfigEntry{Kind: api.TerminatingGateway, Name: "tgw", Services: []api.LinkedService{
		{Name: "ext"},
		{Name: "secure", CAFile: missing, SNI: "secure.example.com"},
	}})
	poll.Until(t, 30*time.Second, "the gateway's NACK of the missing CA file in weft proxy-status", func() error {
		out, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, "tgw-1").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "last NACK") || !strings.Contains(string(out), missing) {
			return fmt.Errorf("no NACK naming %s yet (%v):\n%s", missing, err, out)
		}
		return nil
	})
	if body, err := get(secureBind); err != nil || body != "secure-1" {
		t.Errorf("secure after a refused update: %q, %v; want the previous configuration serving", body, err)
	}
	m.setEntry(t, &api.TerminatingGatewayConfigEntry{Kind: api.TerminatingGateway, Name: "tgw", Services: []api.LinkedService{
		{Name: "ext"},
		{Name: "secure", CAFile: caFile, SNI: "secure.example.com"},
	}})

	// The gateway enforces ext's intentions (L4: the connection closes).
	m.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "ext", Sources: []*api.SourceIntention{
		{Name: "web", Action: api.IntentionActionDeny},
	}})
	before := hits["ext-1"].Load()
	poll.UntilStreak(t, 30*time.Second, "the intention denies web five times in a row", 5, func() error {
		if body, err := get(extBind); err == nil {
			return fmt.Errorf("GET answered %q", body)
		}
		return nil
	})
	if body, err := get(secureBind); err != nil || body != "secure-1" {
		t.Errorf("secure, not denied: %q, %v", body, err)
	}
	// Requests denied after the intention applied never reached ext; a
	// few may have before the streak began.
	denied := hits["ext-1"].Load()
	for range 5 {
		get(extBind)
	}
	if got := hits["ext-1"].Load(); got != denied {
		t.Errorf("ext served %d requests while denied (had %d before the deny)", got-denied, before)
	}
}

// startTLSNameServer serves HTTPS with cert, answering its name.
func startTLSNameServer(t testing.TB, name string, hits *atomic.Int64, cert tls.Certificate) int {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	return serveName(t, l, name, hits)
}
