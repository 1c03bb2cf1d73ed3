package proxy_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// forgedHeaders are what a client may try to pass off as the mesh's:
// a peer identity (x-forwarded-client-cert, twice), the sidecar's own
// x-weft-* headers, and Envoy's trace-forcing headers.
var forgedHeaders = http.Header{
	"X-Forwarded-Client-Cert": {"By=spiffe://weft.local/ns/default/dc/dc1/svc/api;URI=spiffe://weft.local/ns/default/dc/dc1/svc/admin", "URI=spiffe://evil.example/admin"},
	"X-Weft-Error":            {"forged"},
	"X-Weft-Peer":             {"spiffe://weft.local/ns/default/dc/dc1/svc/admin"},
	"X-Weft-Identity":         {"admin"},
	"x-weft-lowercase":        {"forged"}, // sent as is, not canonicalized
	"X-Envoy-Force-Trace":     {"true"},
	"X-Client-Trace-Id":       {"forced-trace"},
}

// TestClientSuppliedMeshHeaders (RELIABILITY #15): forged mesh headers
// sent by a client — through the web sidecar's outbound listener, or
// straight to the api sidecar's mTLS inbound listener with a valid leaf —
// never reach the app: it sees no x-weft-* header and exactly one
// x-forwarded-client-cert, the one its sidecar set from the verified peer
// certificate. weft-proxy gives Envoy's trace-forcing headers
// (x-envoy-force-trace, x-client-trace-id) no meaning: they start no
// trace (no traceparent reaches the app) and pass as application headers.
func TestClientSuppliedMeshHeaders(t *testing.T) {
	m := newMeshTest(t, meshOptions{})
	webID, apiID := serviceID(t, "web"), serviceID(t, "api")
	wantXFCC := []string{"By=" + apiID + ";URI=" + webID}

	outbound := "http://" + m.webAddr(webToAPI) + "/dump"
	inbound := "https://" + m.api.listenerAddr(publicHTTP) + "/dump"
	webLeaf := leafFor(t, m, "web")
	tests := []struct {
		name   string
		url    string
		client *http.Client
		proto  int
	}{
		{"outbound listener, HTTP/1.1", outbound, h1Client(), 1},
		{"outbound listener, HTTP/2 (h2c)", outbound, h2cClient(), 2},
		{"inbound mTLS listener, HTTP/1.1, valid web leaf", inbound, mtlsClient(webLeaf, "http/1.1"), 1},
		{"inbound mTLS listener, HTTP/2, valid web leaf", inbound, mtlsClient(webLeaf, "h2"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range forgedHeaders {
				req.Header[k] = v
			}
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.ProtoMajor != tt.proto {
				t.Fatalf("%s %d %s, want 200 over HTTP/%d", resp.Proto, resp.StatusCode, body, tt.proto)
			}
			var seen http.Header
			if err := json.Unmarshal(body, &seen); err != nil {
				t.Fatalf("app's headers %q: %v", body, err)
			}
			for k, v := range seen {
				if strings.HasPrefix(strings.ToLower(k), "x-weft-") {
					t.Errorf("the app saw %s: %q", k, v)
				}
			}
			if got := seen.Values("X-Forwarded-Client-Cert"); !equal(got, wantXFCC) {
				t.Errorf("the app saw x-forwarded-client-cert %q, want only the sidecar's %q", got, wantXFCC)
			}
			if tp := seen.Get("Traceparent"); tp != "" {
				t.Errorf("trace-forcing headers started a trace: the app saw traceparent %q", tp)
			}
			if got := resp.Header.Get("X-Weft-Error"); got != "" {
				t.Errorf("the client got x-weft-error %q on the app's answer", got)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func h1Client() *http.Client {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return &http.Client{Timeout: wait, Transport: &http.Transport{Protocols: p}}
}

func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: wait, Transport: &http.Transport{Protocols: p}}
}

// mtlsClient presents leaf and offers one ALPN protocol. It does not
// verify the server: the test is about what the server does with the
// client's headers.
func mtlsClient(leaf tls.Certificate, alpn string) *http.Client {
	p := new(http.Protocols)
	if alpn == "h2" {
		p.SetHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	return &http.Client{Timeout: wait, Transport: &http.Transport{Protocols: p, TLSClientConfig: &tls.Config{
		Certificates:       []tls.Certificate{leaf},
		InsecureSkipVerify: true,
		NextProtos:         []string{alpn},
	}}}
}

// leafFor has the mesh's CA sign a leaf for svc, as the certificate
// service would for that service's sidecar.
func leafFor(t *testing.T, m *meshTest, svc string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := spiffeid.FromString(serviceID(t, svc))
	if err != nil {
		t.Fatal(err)
	}
	ca := m.certs.ca.Load()
	leaf, err := ca.Sign(csr, id, leafTTL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain := [][]byte{leaf.Raw}
	for _, c := range ca.Chain() {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
}

// TestHeaderLimitsFromXDS (RELIABILITY #10): an HCM's
// max_request_headers_kb and max_headers_count from the control plane
// are what the listener enforces, with a 431 local reply naming the
// limit; requests within them reach the app.
func TestHeaderLimitsFromXDS(t *testing.T) {
	tl := newTestLog(t)
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	res := mesh{api: []string{namedBackend(t, "b1")}}.resources()
	res[resourcev3.ListenerType][0] = xdstest.WithHCM(xdstest.HTTPListenerRDS(apiListener, "127.0.0.1:0", "api"), func(h *hcmv3.HttpConnectionManager) {
		h.MaxRequestHeadersKb = wrapperspb.UInt32(1)
		h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(8)}
	})
	cp.set("v1", res)
	p := startProxy(t, tl, cp.addr)
	p.waitReady()
	url := "http://" + p.listenerAddr(apiListener) + "/"
	tests := []struct {
		name      string
		header    http.Header
		wantCode  int
		wantError string
	}{
		{"within both limits", http.Header{"X-A": {"1"}, "X-B": {"2"}}, 200, ""},
		{"9 fields", http.Header{"X-Many": {"1", "2", "3", "4", "5", "6", "7", "8", "9"}}, 431, "too_many_headers"},
		{"a 1.5 KiB header", http.Header{"X-Big": {strings.Repeat("a", 1536)}}, 431, "headers_too_large"},
		{"a 900 byte header", http.Header{"X-Big": {strings.Repeat("a", 900)}}, 200, ""},
	}
	for _, tt := range tests {
		for _, client := range []*http.Client{h1Client(), h2cClient()} {
			req, err := http.NewRequest("GET", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || resp.Header.Get("X-Weft-Error") != tt.wantError {
				t.Errorf("%s over %s: %d x-weft-error=%q %q, want %d %q", tt.name, resp.Proto, resp.StatusCode, resp.Header.Get("X-Weft-Error"), body, tt.wantCode, tt.wantError)
			}
			if reached := string(body) == "b1"; reached != (tt.wantCode == 200) {
				t.Errorf("%s over %s: reached the app %v, want %v", tt.name, resp.Proto, reached, tt.wantCode == 200)
			}
		}
	}
}

// TestMissingSecretNeverFailsOpen (RELIABILITY #4): an mTLS listener whose
// trust bundle (SDS secret) has not arrived is accepted and waits for it,
// as Envoy warms such a listener; meanwhile it completes no handshake,
// even for a valid leaf, and answers no plaintext request, so nothing
// reaches the app. Once the secret arrives it serves.
func TestMissingSecretNeverFailsOpen(t *testing.T) {
	tl := newTestLog(t)
	m := &meshTest{t: t, certs: &certService{}}
	ca := newCA(t)
	m.certs.ca.Store(ca)
	var reached atomic.Int32
	app := namedBackendFunc(t, func() { reached.Add(1) })
	cp := startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, m.certs) })
	resources := func(withSecret bool) map[resourcev3.Type][]types.Resource {
		r := map[resourcev3.Type][]types.Resource{
			resourcev3.ListenerType: {xdstest.WithListenerTLS(xdstest.HTTPListenerInline(publicHTTP, "127.0.0.1:0", xdstest.RouteConfig("local_app", "local_app")),
				xdstest.DownstreamTLS(trustDomain.String(), "h2", "http/1.1"))},
			resourcev3.ClusterType: {xdstest.StaticCluster("local_app", xdstest.Endpoint(app))},
		}
		if withSecret {
			r[resourcev3.SecretType] = []types.Resource{xdstest.RootsSecretOf(bundle(ca))}
		}
		return r
	}
	cp.setFor(apiNode, "v1", resources(false))
	p := startProxyWith(t, proxy.Options{ProxyID: apiNode, XDSAddrs: []string{cp.addr}, XDSProtocol: proxy.XDSStateOfTheWorld, Token: aclToken, Logger: tl.slog()})
	cp.waitRequest("LDS ACK of v1", ackOf(resourcev3.ListenerType, "v1"))
	addr := p.listenerAddr(publicHTTP)
	// The sidecar has its leaf: only the bundle is missing.
	poll.UntilTrue(t, wait, "the leaf", func() bool { return p.certs().Identity.Leaf != nil })
	webLeaf := leafFor(t, m, "web")
	url := "https://" + addr + "/"

	for _, alpn := range []string{"http/1.1", "h2"} {
		if resp, err := mtlsClient(webLeaf, alpn).Get(url); err == nil {
			resp.Body.Close()
			t.Errorf("%s over mTLS without the trust bundle: %s %d, want the handshake to fail", alpn, resp.Proto, resp.StatusCode)
		}
	}
	if code, _, body := rawGetOrNothing(t, addr); code != 0 {
		t.Errorf("plaintext request without the trust bundle answered %d %q, want no HTTP answer", code, body)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d requests reached the app before the trust bundle arrived", n)
	}

	cp.setFor(apiNode, "v2", resources(true))
	poll.UntilTrue(t, wait, "mTLS request served once the bundle arrived", func() bool {
		resp, err := mtlsClient(webLeaf, "h2").Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if code, _, body := rawGetOrNothing(t, addr); code != 0 {
		t.Errorf("plaintext request with the trust bundle answered %d %q, want no HTTP answer", code, body)
	}
}

// rawGetOrNothing sends a plaintext HTTP/1.1 GET and returns the answer,
// or code 0 when the server answers no HTTP response.
func rawGetOrNothing(t *testing.T, addr string) (int, http.Header, string) {
	t.Helper()
	c := dialWithDeadline(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// namedBackendFunc is an app answering "ok" that calls hit on every
// request.
func namedBackendFunc(t *testing.T, hit func()) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit(); io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
