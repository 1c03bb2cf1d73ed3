package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// proxyUID is the user web's sidecar runs as in its pod, exempt from the
// redirect (weft redirect --proxy-uid), as in an injected pod.
const proxyUID = "5995"

// TestTransparentProxy runs transparent proxying for real: two network
// namespaces on a bridge, pod A with web's sidecar (transparent mode,
// running as proxyUID, iptables installed by `weft redirect`) and pod B
// with api and secret behind their sidecars. An unmodified client in A
// calls api by its Consul virtual IP and the port api is registered with;
// the request reaches api over mTLS through both sidecars. secret, which
// an intention denies web, gets no filter chain and cannot be reached.
// Destinations outside the mesh are closed while the mesh config entry
// says MeshDestinationsOnly, and passed through once it does not.
func TestTransparentProxy(t *testing.T) {
	requireNetns(t)
	pods := newPodNet(t)
	nsA, ipA := pods.addPod(t, "a")
	nsB, ipB := pods.addPod(t, "b")
	if err := os.Chmod(binDir, 0o755); err != nil { // web's sidecar runs as proxyUID
		t.Fatal(err)
	}

	m := bareMesh(t, meshOptions{xdsHost: pods.hostIP})
	client := m.consul.Client()
	m.setEntry(t, &api.MeshConfigEntry{TransparentProxy: api.TransparentProxyMeshConfig{MeshDestinationsOnly: true}})
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	m.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "secret",
		Sources: []*api.SourceIntention{{Name: "web", Action: api.IntentionActionDeny}}})
	m.startControlPlane(t)

	// Pod B: api and secret, their apps on every address of the pod.
	apiApp := startRecordingApp(t, nsB, "api-1", 8080)
	startRecordingApp(t, nsB, "secret-1", 8081)
	// Transparent mode comes from proxy-defaults alone, as Consul teams set
	// it mesh-wide; pod B's sidecars opt out in their registrations (a
	// registration's mode wins), since pod B has no outbound redirect.
	m.setEntry(t, &api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
		Mode: api.ProxyModeTransparent, TransparentProxy: &api.TransparentProxyConfig{OutboundListenerPort: 15001}})
	direct := &api.AgentServiceConnectProxyConfig{Mode: api.ProxyModeDirect}
	registerPod(t, client, "api-1", "api", ipB, 8080, freePort(t), direct)
	registerPod(t, client, "secret-1", "secret", ipB, 8081, freePort(t), direct)
	registerPod(t, client, "web-1", "web", ipA, 9090, freePort(t), nil)

	// B's inbound redirect sends api's app port to api's sidecar: nothing
	// reaches the app from outside the pod but through mTLS.
	apiPublic := sidecarPort(t, client, "api")
	mustRun(t, "ip", "netns", "exec", nsB, binDir+"/weft", "redirect", "--proxy-uid", "0",
		"--outbound-port", "0", "--inbound-port", strconv.Itoa(apiPublic), "--inbound-ports", "8080")
	// A's outbound redirect, as the injected init container installs it.
	mustRun(t, "ip", "netns", "exec", nsA, binDir+"/weft", "redirect", "--proxy-uid", proxyUID, "--outbound-port", "15001")

	startPodProxy(t, m, nsB, ipB, "api-1-sidecar-proxy")
	startPodProxy(t, m, nsB, ipB, "secret-1-sidecar-proxy")
	startPodProxy(t, m, nsA, ipA, "web-1-sidecar-proxy", "setpriv", "--reuid="+proxyUID, "--regid="+proxyUID, "--clear-groups")
	consultest.WaitForPassing(t, client, "api", 1)

	apiVIP, secretVIP := virtualIP(t, client, "api"), virtualIP(t, client, "secret")
	webAdmin := m.proxyAdmin["web-1-sidecar-proxy"]
	inA := &http.Client{Transport: &http.Transport{DialContext: dialerIn(nsA), DisableKeepAlives: true}}

	t.Run("client in A reaches api by its virtual IP over mTLS", func(t *testing.T) {
		url := "http://" + net.JoinHostPort(apiVIP, "8080") + "/hello"
		poll.Until(t, 30*time.Second, "GET "+url+" from pod A", func() error {
			code, body, err := httpGet(context.Background(), inA, url)
			if err == nil && (code != http.StatusOK || body != "api-1 /hello") {
				err = fmt.Errorf("%d %q, want 200 \"api-1 /hello\"", code, body)
			}
			return err
		})
		// api's sidecar passed on the identity web's sidecar presented in
		// the mTLS handshake, and connected to the app itself.
		last := apiApp.last()
		if !strings.Contains(last.xfcc, "URI=spiffe://") || !strings.HasSuffix(last.xfcc, "/svc/web") {
			t.Errorf("api saw x-forwarded-client-cert %q, want web's SPIFFE ID (…/svc/web)", last.xfcc)
		}
		if host, _, _ := net.SplitHostPort(last.remote); host != "127.0.0.1" {
			t.Errorf("api saw the request from %s, want its sidecar on 127.0.0.1", last.remote)
		}
	})

	t.Run("web's outbound listener has a chain for api and none for secret", func(t *testing.T) {
		chains := outboundChains(t, webAdmin)
		if want := apiVIP + "/32"; chains["api"] != want {
			t.Errorf("chain api matches %q, want %q (chains: %v)", chains["api"], want, chains)
		}
		if _, ok := chains["secret"]; ok {
			t.Errorf("web has a chain for secret, which an intention denies: %v", chains)
		}
	})

	t.Run("secret, denied by intention, is not reachable", func(t *testing.T) {
		before := apiApp.count()
		_, _, err := httpGet(context.Background(), inA, "http://"+net.JoinHostPort(secretVIP, "8081")+"/")
		if err == nil {
			t.Fatal("GET secret's virtual IP from pod A succeeded; want the connection closed")
		}
		t.Logf("secret: %v", err)
		if apiApp.count() != before {
			t.Error("the request to secret reached api")
		}
	})

	t.Run("outside the mesh: closed with MeshDestinationsOnly, passed through without", func(t *testing.T) {
		outside, err := net.Listen("tcp4", pods.hostIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { outside.Close() })
		go http.Serve(outside, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "outside") }))
		url := "http://" + outside.Addr().String() + "/"
		if _, _, err := httpGet(context.Background(), inA, url); err == nil {
			t.Fatal("GET outside the mesh succeeded with MeshDestinationsOnly; want the connection closed by web's sidecar")
		}
		m.setEntry(t, &api.MeshConfigEntry{TransparentProxy: api.TransparentProxyMeshConfig{MeshDestinationsOnly: false}})
		poll.Until(t, 30*time.Second, "GET "+url+" passed through", func() error {
			code, body, err := httpGet(context.Background(), inA, url)
			if err == nil && (code != http.StatusOK || body != "outside") {
				err = fmt.Errorf("%d %q", code, body)
			}
			return err
		})
	})

	t.Run("api's app port is reachable only through its sidecar", func(t *testing.T) {
		before := apiApp.count()
		plain := &http.Client{Timeout: 5 * time.Second}
		if _, _, err := httpGet(context.Background(), plain, "http://"+net.JoinHostPort(ipB, "8080")+"/"); err == nil {
			t.Error("plaintext GET to api's app port from outside pod B succeeded; want the redirect to its mTLS listener to refuse it")
		}
		if apiApp.count() != before {
			t.Error("a plaintext request reached api's app")
		}
	})
}

// recordingApp is an HTTP app answering "<name> <path>" and recording
// what it saw of each request.
type recordingApp struct {
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct{ remote, xfcc string }

func (a *recordingApp) last() seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return seenRequest{}
	}
	return a.seen[len(a.seen)-1]
}

func (a *recordingApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// startRecordingApp serves the app on every address of namespace ns.
func startRecordingApp(t *testing.T, ns, name string, port int) *recordingApp {
	t.Helper()
	a := &recordingApp{}
	ln := listenIn(t, ns, "0.0.0.0:"+strconv.Itoa(port))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, seenRequest{remote: r.RemoteAddr, xfcc: r.Header.Get("X-Forwarded-Client-Cert")})
		a.mu.Unlock()
		io.WriteString(w, name+" "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// registerPod registers a service instance at a pod's IP with a TTL check,
// passing once registered, and a sidecar on publicPort, with proxy settings.
func registerPod(t *testing.T, client *api.Client, id, name, ip string, appPort, publicPort int, proxy *api.AgentServiceConnectProxyConfig) {
	t.Helper()
	if proxy == nil {
		proxy = &api.AgentServiceConnectProxyConfig{}
	}
	reg := &api.AgentServiceRegistration{
		ID: id, Name: name, Address: ip, Port: appPort,
		Check:   &api.AgentServiceCheck{CheckID: ttlCheck(id), TTL: "30m", Status: api.HealthCritical},
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{Address: ip, Port: publicPort, Proxy: proxy}},
	}
	if err := client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	// Passing only after registering: see mesh.registerWithMeta.
	if err := client.Agent().UpdateTTL(ttlCheck(id), "registered", api.HealthPassing); err != nil {
		t.Fatalf("pass %s: %v", id, err)
	}
}

// startPodProxy runs a sidecar inside namespace ns (after the wrapper
// command, if any), its admin API on the pod's IP, and waits until ready.
func startPodProxy(t *testing.T, m *mesh, ns, ip, id string, wrapper ...string) {
	t.Helper()
	admin := net.JoinHostPort(ip, strconv.Itoa(freePort(t)))
	argv := append(append([]string{"ip", "netns", "exec", ns}, wrapper...), binDir+"/weft-proxy",
		"--proxy-id", id, "--xds-addr", m.xdsAddr, "--admin-addr", admin, "--log-level", "debug")
	m.proxies[id], m.proxyAdmin[id] = testproc.Run(t, testproc.Spec{Name: id, Args: argv}), admin
	waitHTTP200(t, "http://"+admin+"/ready", 30*time.Second)
}

// sidecarPort is the public port of a service's (only) sidecar.
func sidecarPort(t *testing.T, client *api.Client, service string) int {
	t.Helper()
	entries, _, err := client.Health().Connect(service, "", false, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("sidecar of %s: %d entries, %v", service, len(entries), err)
	}
	return entries[0].Service.Port
}

// virtualIP is the virtual IP Consul assigned to a service.
func virtualIP(t *testing.T, client *api.Client, service string) string {
	t.Helper()
	var vip string
	poll.Until(t, 10*time.Second, "virtual IP of "+service, func() error {
		entries, _, err := client.Health().Connect(service, "", false, nil)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if vip = e.Service.TaggedAddresses["consul-virtual"].Address; vip != "" {
				return nil
			}
		}
		return errors.New("none assigned")
	})
	return vip
}

// outboundChains reads a sidecar's accepted outbound listener from
// /config_dump: the address prefixes of each filter chain, by chain name.
func outboundChains(t *testing.T, admin string) map[string]string {
	t.Helper()
	code, body, err := httpGet(context.Background(), &http.Client{}, "http://"+admin+"/config_dump")
	if err != nil || code != http.StatusOK {
		t.Fatalf("config_dump: %d %v", code, err)
	}
	var dump struct {
		Resources map[string]struct {
			Items map[string]struct {
				FilterChains []struct {
					Name  string `json:"name"`
					Match struct {
						PrefixRanges []struct {
							AddressPrefix string `json:"addressPrefix"`
							PrefixLen     int    `json:"prefixLen"`
						} `json:"prefixRanges"`
					} `json:"filterChainMatch"`
				} `json:"filterChains"`
			} `json:"items"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatal(err)
	}
	l, ok := dump.Resources["listeners"].Items["outbound_listener:127.0.0.1:15001"]
	if !ok {
		t.Fatalf("no outbound listener in config_dump; listeners: %v", dump.Resources["listeners"].Items)
	}
	chains := map[string]string{}
	for _, fc := range l.FilterChains {
		var prefixes []string
		for _, p := range fc.Match.PrefixRanges {
			prefixes = append(prefixes, fmt.Sprintf("%s/%d", p.AddressPrefix, p.PrefixLen))
		}
		chains[fc.Name] = strings.Join(prefixes, ",")
	}
	return chains
}
