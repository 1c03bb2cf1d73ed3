package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestIngressGatewayTLS: an ingress-gateway entry with TLS on one
// listener makes the gateway serve outside clients over TLS, presenting
// a leaf of the mesh's CA that carries its hosts, *.ingress.consul,
// *.ingress.<dc>.consul and its SPIFFE ID, which a client trusting only
// the control plane's roots verifies; its other listener stays plaintext;
// adding a host to the entry gets the gateway a leaf that covers it.
func TestIngressGatewayTLS(t *testing.T) {
	m := newMesh(t)
	m.startHTTPInstances(t, "api", "web")
	tlsPort, plainPort := freePort(t), freePort(t)
	entry := func(webHosts ...string) *api.IngressGatewayConfigEntry {
		return &api.IngressGatewayConfigEntry{Kind: api.IngressGateway, Name: "ingress", Listeners: []api.IngressListener{
			{Port: tlsPort, Protocol: "http", TLS: &api.GatewayTLSConfig{Enabled: true},
				Services: []api.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}}},
			{Port: plainPort, Protocol: "http", Services: []api.IngressService{{Name: "web", Hosts: webHosts}}},
		}}
	}
	m.setEntry(t, entry("web.example.com"))
	out, err := exec.Command(filepath.Join(binDir, "weft"), "register", "--gateway", "ingress", "--name", "ingress", "--id", "ingress-1",
		"--address", "127.0.0.1", "--consul-addr", m.consul.HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered ingress gateway ingress-1") {
		t.Fatalf("weft register --gateway ingress: %v\n%s", err, out)
	}
	m.startProxy(t, "ingress-1")
	consultest.WaitForPassing(t, m.consul.Client(), "api", 1)
	consultest.WaitForPassing(t, m.consul.Client(), "web", 1)

	// The control plane's roots, as an outside client is given them.
	root := meshCA(t, m.caDir).Cert
	roots := x509.NewCertPool()
	roots.AddCert(root)
	tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)

	for _, h2 := range []bool{false, true} {
		client := outsideHTTPS(roots, "api.example.com", tlsAddr, h2)
		poll.UntilStreak(t, 30*time.Second, fmt.Sprintf("api.example.com over TLS (h2 %v) reaches api five times in a row", h2), 5, func() error {
			resp, err := client.Get("https://api.example.com/")
			if err != nil {
				return err
			}
			body := strings.TrimSpace(mustRead(resp))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || body != "api-1" || (resp.ProtoMajor == 2) != h2 {
				return fmt.Errorf("GET: %d %s %q", resp.StatusCode, resp.Proto, body)
			}
			return nil
		})
	}

	dc := m.consul.Datacenter()
	t.Run("the leaf carries the hosts, the wildcards and the gateway's SPIFFE ID", func(t *testing.T) {
		leaf, err := ingressLeaf(roots, tlsAddr, "api.example.com")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"*.ingress.consul", "*.ingress." + dc + ".consul", "api.example.com", "web.example.com"}
		if got := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(got, want) {
			t.Errorf("leaf DNS names %q, want %q", got, want)
		}
		wantURI := root.URIs[0].String() + "/ns/default/dc/" + dc + "/svc/ingress"
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantURI {
			t.Errorf("leaf URIs %v, want %s", leaf.URIs, wantURI)
		}
		if _, err := ingressLeaf(roots, tlsAddr, "api.ingress.consul"); err != nil {
			t.Errorf("api.ingress.consul (Consul's DNS name of the gateway's services): %v", err)
		}
	})
	t.Run("a client not trusting the roots fails the handshake", func(t *testing.T) {
		if _, err := ingressLeaf(x509.NewCertPool(), tlsAddr, "api.example.com"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("handshake without the mesh's roots: %v, want a certificate error", err)
		}
	})
	t.Run("plaintext to the TLS listener fails", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second}
		if resp, err := client.Get("http://" + tlsAddr + "/"); err == nil {
			resp.Body.Close()
			t.Errorf("plaintext GET answered %d, want a failure", resp.StatusCode)
		}
	})
	t.Run("the listener without TLS stays plaintext", func(t *testing.T) {
		if code, body := plainGet(t, plainPort, "web.example.com"); code != http.StatusOK || body != "web-1" {
			t.Errorf("plaintext GET web.example.com: %d %q, want web-1", code, body)
		}
	})
	t.Run("weft proxy-status shows which listener has TLS", func(t *testing.T) {
		status, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, "ingress-1").CombinedOutput()
		want := fmt.Sprintf(":%d http TLS (weft-ingress-leaf) Host api.example.com → api", tlsPort)
		if err != nil || !strings.Contains(string(status), want) || !strings.Contains(string(status), fmt.Sprintf(":%d http Host web.example.com → web", plainPort)) {
			t.Errorf("weft proxy-status ingress-1 lacks %q or the plaintext listener: %v\n%s", want, err, status)
		}
	})
	t.Run("a new host gets a leaf that covers it", func(t *testing.T) {
		m.setEntry(t, entry("web.example.com", "www.example.com"))
		poll.UntilTrue(t, 30*time.Second, "a leaf for www.example.com", func() bool {
			leaf, err := ingressLeaf(roots, tlsAddr, "www.example.com")
			return err == nil && slices.Contains(leaf.DNSNames, "www.example.com")
		})
		client := outsideHTTPS(roots, "api.example.com", tlsAddr, true)
		resp, err := client.Get("https://api.example.com/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("after the new leaf: %d, want 200", resp.StatusCode)
		}
	})
}

// outsideHTTPS is a client outside the mesh trusting roots, verifying the
// server as serverName, dialling addr for every host, with h2 or HTTP/1.1.
func outsideHTTPS(roots *x509.CertPool, serverName, addr string, h2 bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: serverName},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

// ingressLeaf handshakes with addr as serverName, verifying the server
// against roots, and returns its leaf.
func ingressLeaf(roots *x509.CertPool, addr, serverName string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// plainGet asks the gateway's port for / with Host host in plaintext.
func plainGet(t *testing.T, port int, host string) (int, string) {
	t.Helper()
	var code int
	var body string
	poll.UntilStreak(t, 30*time.Second, "a plaintext answer for "+host, 3, func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		code, body = resp.StatusCode, strings.TrimSpace(mustRead(resp))
		if code != http.StatusOK {
			return fmt.Errorf("GET: %d %q", code, body)
		}
		return nil
	})
	return code, body
}
