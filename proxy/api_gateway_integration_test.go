package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

const (
	apiGatewayNode   = "api-gateway-1"
	apiGatewayHTTPS  = "api-gateway:127.0.0.1:0"
	apiGatewayRoutes = "api-gateway:https"
	apiCertSecret    = "api-gateway-certificate/api"
	shopCertSecret   = "api-gateway-certificate/shop"
	jwtRefusal       = "refused: this route requires a JWT, which Weft's API gateway cannot verify\n"
)

// apiGateway is what the control plane sends an API gateway (as in
// controlplane/translate/testdata/api_gateway.golden.json): an HTTPS
// listener presenting two certificates over SDS, routes to an upstream
// and a route refused with a direct response.
type apiGateway struct {
	upstream string
	// certs are the certificate secrets sent; none leaves the listener
	// warming.
	certs []types.Resource
}

func (g apiGateway) resources() map[resourcev3.Type][]types.Resource {
	refuse := xdstest.DirectResponse(xdstest.Prefix("/private"), 403, jwtRefusal)
	refuse.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-gateway", Value: "weft"}}}
	return map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.WithListenerTLS(xdstest.HTTPListenerRDS(apiGatewayHTTPS, "127.0.0.1:0", apiGatewayRoutes),
			xdstest.OutsideTLS([]string{"h2", "http/1.1"}, apiCertSecret, shopCertSecret))},
		resourcev3.RouteType:   {xdstest.Routes(apiGatewayRoutes, refuse, xdstest.PrefixRoute("/", "v1.default.dc1"))},
		resourcev3.ClusterType: {xdstest.StaticCluster("v1.default.dc1", xdstest.Endpoint(g.upstream))},
		resourcev3.SecretType:  g.certs,
	}
}

// gatewayCerts issues the gateway's certificates from ca.
func gatewayCerts(t *testing.T, ca *pkitest.CA) (api, shop pkitest.Pair) {
	return ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"api.example.com"}}), ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"shop.example.com"}})
}

func certSecrets(api, shop pkitest.Pair) []types.Resource {
	return []types.Resource{xdstest.CertificateSecret(apiCertSecret, api.CertPEM, api.KeyPEM), xdstest.CertificateSecret(shopCertSecret, shop.CertPEM, shop.KeyPEM)}
}

// outsideClient is an HTTPS client outside the mesh trusting ca: every
// host it asks for is dialled at addr, its TLS server name that host.
func outsideClient(ca *pkitest.CA, addr string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	dialer := &net.Dialer{Timeout: wait}
	return &http.Client{Timeout: wait, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

// servedCertificate handshakes with addr asking for serverName and
// returns the certificate presented, verified against ca.
func servedCertificate(t *testing.T, ca *pkitest.CA, addr, serverName string) (*x509.Certificate, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := tls.Client(dialWithDeadline(t, addr), &tls.Config{RootCAs: pool, ServerName: serverName})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestAPIGateway runs weft-proxy as an API gateway against
// go-control-plane: its HTTPS listener waits for its certificates, then
// serves outside clients by SNI over h2, refuses a route with its direct
// response without reaching the upstream, rotates a certificate for new
// connections while an open one keeps going, NACKs a certificate whose
// key does not match, and never shows a private key in /config_dump.
func TestAPIGateway(t *testing.T) {
	tl := newTestLog(t)
	ca := pkitest.NewCA(t, "gateway CA")
	var upstreamHits atomic.Int32
	gw := apiGateway{upstream: namedBackendFunc(t, func() { upstreamHits.Add(1) })}
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	cp.setFor(apiGatewayNode, "v1", gw.resources())
	p := startProxyWith(t, proxy.Options{ProxyID: apiGatewayNode, XDSAddrs: []string{cp.addr}, XDSProtocol: proxy.XDSStateOfTheWorld, Logger: tl.slog()})

	poll.UntilTrue(t, wait, "the HTTPS listener warming for its certificates", func() bool {
		for _, l := range p.listeners() {
			if l.Name == apiGatewayHTTPS {
				return l.BoundAddress == "" && slices.Equal(l.Warming, []string{apiCertSecret, shopCertSecret})
			}
		}
		return false
	})
	apiPair, shopPair := gatewayCerts(t, ca)
	gw.certs = certSecrets(apiPair, shopPair)
	cp.setFor(apiGatewayNode, "v2", gw.resources())
	addr := p.listenerAddr(apiGatewayHTTPS)
	p.waitReady()
	client := outsideClient(ca, addr)

	t.Run("an outside client reaches the upstream over h2", func(t *testing.T) {
		resp, body := mustGet(t, client, "https://api.example.com/hello")
		if resp.StatusCode != 200 || body != "ok" || resp.Proto != "HTTP/2.0" || upstreamHits.Load() != 1 {
			t.Errorf("GET = %d %s %q, upstream hits %d; want 200 HTTP/2.0 from the upstream", resp.StatusCode, resp.Proto, body, upstreamHits.Load())
		}
	})
	t.Run("SNI picks the certificate", func(t *testing.T) {
		for _, host := range []string{"api.example.com", "shop.example.com"} {
			cert, err := servedCertificate(t, ca, addr, host)
			if err != nil || !slices.Equal(cert.DNSNames, []string{host}) {
				t.Errorf("asking for %s: %v, %v; want its certificate", host, cert, err)
			}
		}
	})
	t.Run("a direct response refuses without reaching the upstream", func(t *testing.T) {
		before := upstreamHits.Load()
		resp, body := mustGet(t, client, "https://shop.example.com/private/orders")
		if resp.StatusCode != 403 || body != jwtRefusal || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Gateway") != "weft" {
			t.Errorf("GET = %d %v %q; want 403, text/plain, x-gateway and the refusal", resp.StatusCode, resp.Header, body)
		}
		if upstreamHits.Load() != before {
			t.Error("the refused request reached the upstream")
		}
		_, metrics := p.adminGet("/metrics")
		if !strings.Contains(string(metrics), `code="403"`) || !strings.Contains(string(metrics), `reason="direct_response"`) {
			t.Error(`weft_proxy_requests_total has no code="403", reason="direct_response" series`)
		}
	})
	t.Run("a rotated certificate serves new connections, open ones go on", func(t *testing.T) {
		open := openHTTP1(t, ca, addr, "api.example.com")
		rotated, _ := gatewayCerts(t, ca)
		gw.certs = certSecrets(rotated, shopPair)
		cp.setFor(apiGatewayNode, "v3", gw.resources())
		poll.UntilTrue(t, wait, "the rotated certificate served", func() bool {
			cert, err := servedCertificate(t, ca, addr, "api.example.com")
			return err == nil && string(cert.Raw) == string(pemDER(t, rotated.CertPEM))
		})
		if got := open.get(t, "/still-here"); got != "ok" {
			t.Errorf("the connection opened before the rotation answered %q, want ok", got)
		}
	})
	t.Run("a key that does not match its certificate is NACKed", func(t *testing.T) {
		mismatched := certSecrets(pkitest.Pair{CertPEM: apiPair.CertPEM, KeyPEM: shopPair.KeyPEM}, shopPair)
		gw.certs = mismatched
		cp.setFor(apiGatewayNode, "v4", gw.resources())
		nack := cp.waitRequest("SDS NACK", nackOf(resourcev3.SecretType))
		want := `secret "` + apiCertSecret + `": tls_certificate: tls: private key does not match public key`
		if msg := nack.GetErrorDetail().GetMessage(); !strings.Contains(msg, want) || nack.GetVersionInfo() != "v3" {
			t.Errorf("SDS NACK version %q error %q; want version v3 and %q", nack.GetVersionInfo(), msg, want)
		}
		if resp, body := mustGet(t, client, "https://api.example.com/"); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("after the NACK: %d %q, want the previous configuration serving", resp.StatusCode, body)
		}
	})
	t.Run("/config_dump shows no private key", func(t *testing.T) {
		_, dump := p.adminGet("/config_dump")
		for _, pair := range []pkitest.Pair{apiPair, shopPair} {
			for _, line := range pemLines(pair.KeyPEM) {
				if strings.Contains(string(dump), line) {
					t.Fatalf("/config_dump holds a private key")
				}
			}
		}
		var got struct {
			Resources struct {
				Secrets struct {
					Items map[string]struct {
						TLSCertificate struct {
							CertificateChain, PrivateKey struct{ InlineString string }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(dump, &got); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{apiCertSecret, shopCertSecret} {
			s := got.Resources.Secrets.Items[name].TLSCertificate
			if s.PrivateKey.InlineString != "[redacted]" || !strings.Contains(s.CertificateChain.InlineString, "-----BEGIN CERTIFICATE-----") {
				t.Errorf("/config_dump secret %q = %+v; want its key [redacted], its chain shown", name, s)
			}
		}
		if c := p.certs().Certificates[shopCertSecret]; !slices.Equal(c.DNSNames, []string{"shop.example.com"}) {
			t.Errorf("/certs certificates[%q] = %+v, want shop.example.com's", shopCertSecret, c)
		}
	})
}

func mustGet(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(b)
}

// http1Conn is one open HTTP/1.1 keep-alive connection over TLS.
type http1Conn struct {
	c    *tls.Conn
	r    *bufio.Reader
	host string
}

func openHTTP1(t *testing.T, ca *pkitest.CA, addr, host string) *http1Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := tls.Client(dialWithDeadline(t, addr), &tls.Config{RootCAs: pool, ServerName: host, NextProtos: []string{"http/1.1"}})
	h := &http1Conn{c: c, r: bufio.NewReader(c), host: host}
	if got := h.get(t, "/"); got != "ok" {
		t.Fatalf("first request on the connection: %q", got)
	}
	return h
}

func (h *http1Conn) get(t *testing.T, path string) string {
	t.Helper()
	if _, err := io.WriteString(h.c, "GET "+path+" HTTP/1.1\r\nHost: "+h.host+"\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(h.r, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// pemLines are the base64 lines of a PEM block, as they appear in JSON
// (where the newlines between them are escaped).
func pemLines(b []byte) []string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[1 : len(lines)-1]
}

func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("not PEM")
	}
	return block.Bytes
}

// TestAPIGatewayKeepsItsCertificateWhileTheNextWarms: a listener moved to
// a certificate that has not arrived keeps serving with its previous
// configuration — and its previous certificate, though the new
// configuration no longer lists that secret — across unrelated updates,
// until the new certificate arrives.
func TestAPIGatewayKeepsItsCertificateWhileTheNextWarms(t *testing.T) {
	const nextSecret = "api-gateway-certificate/next"
	tl := newTestLog(t)
	ca := pkitest.NewCA(t, "gateway CA")
	upstream := namedBackendFunc(t, func() {})
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	resources := func(secret string, certs []types.Resource, cluster string) map[resourcev3.Type][]types.Resource {
		return map[resourcev3.Type][]types.Resource{
			resourcev3.ListenerType: {xdstest.WithListenerTLS(xdstest.HTTPListenerRDS(apiGatewayHTTPS, "127.0.0.1:0", apiGatewayRoutes),
				xdstest.OutsideTLS([]string{"h2", "http/1.1"}, secret))},
			resourcev3.RouteType:   {xdstest.Routes(apiGatewayRoutes, xdstest.PrefixRoute("/", cluster))},
			resourcev3.ClusterType: {xdstest.StaticCluster(cluster, xdstest.Endpoint(upstream))},
			resourcev3.SecretType:  certs,
		}
	}
	first := ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"api.example.com"}})
	next := ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"api.example.com"}})
	cp.setFor(apiGatewayNode, "v1", resources(apiCertSecret, []types.Resource{xdstest.CertificateSecret(apiCertSecret, first.CertPEM, first.KeyPEM)}, "v1.default.dc1"))
	p := startProxyWith(t, proxy.Options{ProxyID: apiGatewayNode, XDSAddrs: []string{cp.addr}, XDSProtocol: proxy.XDSStateOfTheWorld, Logger: tl.slog()})
	addr := p.listenerAddr(apiGatewayHTTPS)
	p.waitReady()
	serves := func(want pkitest.Pair) func() bool {
		return func() bool {
			cert, err := servedCertificate(t, ca, addr, "api.example.com")
			return err == nil && string(cert.Raw) == string(pemDER(t, want.CertPEM))
		}
	}
	poll.UntilTrue(t, wait, "the first certificate served", serves(first))

	// The listener now names a certificate not sent yet; the first is no
	// longer among the secrets.
	cp.setFor(apiGatewayNode, "v2", resources(nextSecret, nil, "v1.default.dc1"))
	poll.UntilTrue(t, wait, "the listener warming for the next certificate", func() bool {
		for _, l := range p.listeners() {
			if l.Name == apiGatewayHTTPS {
				return slices.Equal(l.Warming, []string{nextSecret})
			}
		}
		return false
	})
	if !serves(first)() {
		t.Fatal("while the next certificate warms, the listener stopped presenting the first")
	}
	// An unrelated update (the route's cluster renamed) applies meanwhile.
	cp.setFor(apiGatewayNode, "v3", resources(nextSecret, nil, "v2.default.dc1"))
	cp.waitRequest("the unrelated update ACKed", func(r *discoveryv3.DiscoveryRequest) bool {
		return r.GetTypeUrl() == resourcev3.ClusterType && r.GetVersionInfo() == "v3" && r.GetErrorDetail() == nil
	})
	if !serves(first)() {
		t.Fatal("after an unrelated update, the waiting listener stopped presenting the first certificate")
	}
	cp.setFor(apiGatewayNode, "v4", resources(nextSecret, []types.Resource{xdstest.CertificateSecret(nextSecret, next.CertPEM, next.KeyPEM)}, "v2.default.dc1"))
	poll.UntilTrue(t, wait, "the next certificate served once it arrived", serves(next))
	if _, body := p.adminGet("/certs"); strings.Contains(string(body), apiCertSecret) {
		t.Errorf("/certs still lists %s once no listener presents it:\n%s", apiCertSecret, body)
	}
}
