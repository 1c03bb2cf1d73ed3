package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
)

// meshCA reads the control plane's root CA from its directory, as an
// attacker holding a stolen root could: tests use it to mint bad leaves.
func meshCA(t *testing.T, dir string) *pkitest.CA {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &pkitest.CA{Cert: cert, Key: key.(*ecdsa.PrivateKey)}
}

// TestMTLSRejections dials api-1's sidecar directly with clients that must
// be refused; not one byte may reach the app. A well-formed mesh client is
// the control that proves the path works.
func TestMTLSRejections(t *testing.T) {
	m := startMesh(t)
	newCaller(t, m.apiPort).waitServedBy(30*time.Second, 1, true, "api-1")
	mesh := meshCA(t, m.caDir)
	foreign := pkitest.NewCA(t, "foreign CA", "spiffe://weft.local")
	now := time.Now()
	webID := "spiffe://weft.local/ns/default/dc/dc1/svc/web"
	valid := pkitest.LeafSpec{URIs: []string{webID}} // from a minute ago for an hour
	target := addr(m.publicPort["api-1"])
	client := func(ca *pkitest.CA, spec pkitest.LeafSpec) func(*testing.T) *http.Client {
		return func(t *testing.T) *http.Client { return tlsClient(ptr(ca.Issue(t, spec))) }
	}

	tests := []struct {
		name   string
		client func(*testing.T) *http.Client
		wantOK bool
	}{
		{"plaintext", func(*testing.T) *http.Client { return &http.Client{} }, false},
		{"no client certificate", func(*testing.T) *http.Client { return tlsClient(nil) }, false},
		{"foreign CA", client(foreign, valid), false},
		{"expired", client(mesh, pkitest.LeafSpec{URIs: []string{webID}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}), false},
		{"other trust domain", client(mesh, pkitest.LeafSpec{URIs: []string{"spiffe://evil.local/ns/default/dc/dc1/svc/web"}}), false},
		{"DNS SAN instead of URI SAN", client(mesh, pkitest.LeafSpec{DNSNames: []string{"web.service.consul"}}), false},
		{"two URI SANs", client(mesh, pkitest.LeafSpec{URIs: []string{webID, "spiffe://weft.local/ns/default/dc/dc1/svc/db"}}), false},
		{"valid mesh identity (control)", client(mesh, valid), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := "https"
			if tt.name == "plaintext" {
				scheme = "http"
			}
			before := m.hits["api-1"].Load()
			code, body, err := httpGet(context.Background(), tt.client(t), scheme+"://"+target+"/")
			reached := m.hits["api-1"].Load() - before
			if tt.wantOK {
				if err != nil || code != http.StatusOK || reached != 1 {
					t.Fatalf("control request: code %d body %q err %v, app saw %d requests; want 200 and 1", code, body, err, reached)
				}
				return
			}
			if err == nil && code == http.StatusOK {
				t.Fatalf("request succeeded (%q); want the handshake refused", body)
			}
			if reached != 0 {
				t.Fatalf("%d requests reached the app; want 0", reached)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func tlsClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}} // the server is not what these tests check
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func setIntentions(t *testing.T, m *mesh, dest string, sources ...*api.SourceIntention) {
	t.Helper()
	entry := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: dest, Sources: sources}
	if _, _, err := m.consul.Client().ConfigEntries().Set(entry, nil); err != nil {
		t.Fatalf("set intentions for %s: %v", dest, err)
	}
}

// TestIntentions runs a default-deny mesh: nothing passes until an
// intention allows it; an L7 deny on a path holds against path tricks; a
// deny added while a TCP connection is open closes it.
func TestIntentions(t *testing.T) {
	m := startMesh(t, meshOptions{defaultPolicy: "deny"})
	c := newCaller(t, m.apiPort)

	if _, err := c.call(); err == nil {
		t.Fatal("web reached api with no intention under default deny")
	}
	if n := m.hits["api-1"].Load() + m.hits["api-2"].Load(); n != 0 {
		t.Fatalf("%d requests reached api under default deny", n)
	}

	setIntentions(t, m, "api", &api.SourceIntention{Name: "web", Action: api.IntentionActionAllow})
	c.waitServedBy(10*time.Second, 5, true, "api-1", "api-2")

	setIntentions(t, m, "api", &api.SourceIntention{Name: "web", Permissions: []*api.IntentionPermission{
		{Action: api.IntentionActionDeny, HTTP: &api.IntentionHTTPPermission{PathPrefix: "/admin"}},
		{Action: api.IntentionActionAllow, HTTP: &api.IntentionHTTPPermission{PathPrefix: "/"}},
	}})
	// Both api sidecars must have the new intentions: 8 denials in a row
	// through web's round robin, not one from whichever updated first.
	poll.Until(t, 10*time.Second, "L7 deny on /admin at both api sidecars", func() error {
		for i := range 8 {
			code, _, err := rawGet(addr(m.apiPort), "/admin")
			if err != nil || code != http.StatusForbidden {
				return fmt.Errorf("GET /admin #%d = %d, %v; want 403", i+1, code, err)
			}
		}
		return nil
	})
	before := m.hits["api-1"].Load() + m.hits["api-2"].Load()
	for _, path := range []string{"/admin", "/admin/x", "//admin", "/./admin", "/public/../admin", "/%61dmin", "/%2e%2e/admin", "/public%2F..%2Fadmin", `/public\..\admin`, "/admin#frag"} {
		code, hdr, err := rawGet(addr(m.apiPort), path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		if code != http.StatusForbidden && code != http.StatusBadRequest {
			t.Errorf("GET %s = %d (x-weft-error %q); want 403 (or 400 for an invalid request)", path, code, hdr)
		}
	}
	if after := m.hits["api-1"].Load() + m.hits["api-2"].Load(); after != before {
		t.Errorf("%d denied requests reached the api apps", after-before)
	}
	if code, _, err := rawGet(addr(m.apiPort), "/public"); err != nil || code != http.StatusOK {
		t.Errorf("GET /public = %d, %v; want 200", code, err)
	}

	// A deny added while a TCP connection is open closes it.
	setIntentions(t, m, "echo", &api.SourceIntention{Name: "web", Action: api.IntentionActionAllow})
	var conn net.Conn
	poll.Until(t, 10*time.Second, "echo allowed", func() error {
		var err error
		if conn, err = openEcho(addr(m.echoPort)); err != nil {
			return err
		}
		return nil
	})
	defer conn.Close()
	setIntentions(t, m, "echo", &api.SourceIntention{Name: "web", Action: api.IntentionActionDeny})
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err == nil || isTimeout(err) {
		t.Fatalf("open connection of a newly denied source was not closed: read err %v", err)
	}
}

// openEcho opens a connection through the mesh and checks one echo.
func openEcho(address string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("x")); err != nil {
		conn.Close()
		return nil, err
	}
	b := make([]byte, 1)
	if _, err := conn.Read(b); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// rawGet sends a request line exactly as given, which an HTTP client would
// clean up, and returns the status and x-weft-error header.
func rawGet(address, path string) (int, string, error) {
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("x-weft-error"), nil
}

// TestRootRotationUnderLoad rotates the root CA while requests flow: not
// one may fail, and afterwards a single new root signs every leaf.
func TestRootRotationUnderLoad(t *testing.T) {
	m := startMesh(t)
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 1, true, "api-1")
	c.waitServedBy(30*time.Second, 1, true, "api-2")

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.call(); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				ok.Add(1)
			}
		}
	})
	out, err := exec.Command(filepath.Join(binDir, "weft"), "ca", "rotate", "--admin-addr", m.cpAdmin, "--timeout", "2m").CombinedOutput()
	// Keep the load on a moment past the end, through the old root's retirement.
	more := ok.Load() + 50
	poll.Until(t, 10*time.Second, "50 more requests after rotation", func() error {
		if ok.Load() < more {
			return fmt.Errorf("%d of %d", ok.Load(), more)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("weft ca rotate:\n%s", out)
	if err != nil {
		t.Fatalf("weft ca rotate: %v", err)
	}
	if !strings.Contains(string(out), "done") {
		t.Fatal("rotation did not report done")
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during rotation; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	roots, err := exec.Command(filepath.Join(binDir, "weft"), "ca", "roots", "--admin-addr", m.cpAdmin).CombinedOutput()
	if err != nil || strings.Count(string(roots), "root [") != 1 || !strings.Contains(string(roots), "stable") {
		t.Fatalf("after rotation want one root, phase stable:\n%s (%v)", roots, err)
	}
}

// sidecarLeaf is a sidecar's current leaf, as its admin API's /certs
// shows it.
type sidecarLeaf struct {
	Serial   string `json:"serial"`
	SpiffeID string `json:"spiffe_id"`
}

func readLeaf(t *testing.T, admin string) sidecarLeaf {
	t.Helper()
	var doc struct {
		Identity struct {
			Leaf *sidecarLeaf `json:"leaf"`
		} `json:"identity"`
	}
	resp, err := http.Get("http://" + admin + "/certs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Identity.Leaf == nil {
		t.Fatalf("read /certs of %s: %v", admin, err)
	}
	return *doc.Identity.Leaf
}

// leafSerial reads a sidecar's current leaf serial from its admin API.
func leafSerial(t *testing.T, admin string) string { return readLeaf(t, admin).Serial }

// TestLeafRenewalUnderLoad runs one-minute leaves: both sidecars of a call
// renew (at about 2/3 of the lifetime) while requests flow, none failing.
func TestLeafRenewalUnderLoad(t *testing.T) {
	m := startMesh(t, meshOptions{leafTTL: "1m"})
	c := newCaller(t, m.apiPort)
	c.waitServedBy(30*time.Second, 1, true, "api-1")
	webAdmin, apiAdmin := m.proxyAdmin["web-1-sidecar-proxy"], m.proxyAdmin["api-1-sidecar-proxy"]
	webFirst, apiFirst := leafSerial(t, webAdmin), leafSerial(t, apiAdmin)

	requests := 0
	deadline := time.Now().Add(75 * time.Second)
	for leafSerial(t, webAdmin) == webFirst || leafSerial(t, apiAdmin) == apiFirst {
		if time.Now().After(deadline) {
			t.Fatal("sidecars did not renew one-minute leaves within 75s")
		}
		for range 20 {
			if _, err := c.call(); err != nil {
				t.Fatalf("request %d failed across leaf renewal: %v", requests, err)
			}
			requests++
		}
	}
	t.Logf("%d requests across renewal of both leaves, none failed", requests)
}
