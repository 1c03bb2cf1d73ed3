package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

const (
	ingressNode   = "ingress-1" // the certificate service signs it as service "ingress"
	ingressHTTPS  = "ingress:127.0.0.1:0"
	ingressRoutes = "ingress:8080"
)

// ingressResources are what the control plane sends an ingress gateway
// with TLS (as in controlplane/translate/testdata/ingress_gateway_tls.golden.json):
// an HTTPS listener presenting weft-ingress-leaf, whose DNS names its
// metadata lists, routing to upstream.
func ingressResources(upstream string, names ...string) map[resourcev3.Type][]types.Resource {
	l := xdstest.WithListenerTLS(xdstest.HTTPListenerRDS(ingressHTTPS, "127.0.0.1:0", ingressRoutes), xdstest.TransportSocket(xdstest.IngressTLSContext([]string{"h2", "http/1.1"})))
	return map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.WithIngressDNSNames(l, names...)},
		resourcev3.RouteType:    {xdstest.RouteConfig(ingressRoutes, "api.default.dc1")},
		resourcev3.ClusterType:  {xdstest.StaticCluster("api.default.dc1", xdstest.Endpoint(upstream))},
	}
}

// meshClient is an HTTPS client outside the mesh trusting roots: every
// host it asks for is dialled at addr.
func meshClient(roots *x509.CertPool, addr string) *http.Client {
	dialer := &net.Dialer{Timeout: wait}
	return &http.Client{Timeout: wait, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

// TestIngressGatewayTLS runs weft-proxy as an ingress gateway with TLS
// against go-control-plane and a certificate service: its listener warms
// until the certificate service signs its leaf with the listener's DNS
// names, then serves outside clients that trust the mesh's root; new DNS
// names get a new leaf, the previous one served meanwhile; /certs lists
// the leaf.
func TestIngressGatewayTLS(t *testing.T) {
	tl := newTestLog(t)
	svc := &certService{}
	ca := newCA(t)
	svc.ca.Store(ca)
	svc.dns.Store(&[]string{}) // refuses every DNS name at first
	cp := startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, svc) })
	upstream := namedBackendFunc(t, func() {})
	first := []string{"*.ingress.consul", "api.example.com"}
	cp.setFor(ingressNode, "v1", ingressResources(upstream, first...))
	p := startProxyWith(t, proxy.Options{ProxyID: ingressNode, XDSAddrs: []string{cp.addr}, Token: aclToken, XDSProtocol: proxy.XDSStateOfTheWorld, Logger: tl.slog()})

	poll.UntilTrue(t, wait, "the HTTPS listener warming for its leaf, the refusal in /certs", func() bool {
		st := p.certs().Ingress
		for _, l := range p.listeners() {
			if l.Name == ingressHTTPS {
				return l.BoundAddress == "" && slices.Equal(l.Warming, []string{config.IngressLeafSecret}) && st != nil && st.LastError != ""
			}
		}
		return false
	})
	svc.dns.Store(&first)
	addr := p.listenerAddr(ingressHTTPS)
	p.waitReady()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())

	t.Run("an outside client trusting the mesh's root reaches the upstream", func(t *testing.T) {
		for _, h2 := range []bool{true, false} {
			client := meshClient(roots, addr)
			client.Transport.(*http.Transport).ForceAttemptHTTP2 = h2
			resp, body := mustGet(t, client, "https://api.example.com/hello")
			if resp.StatusCode != 200 || body != "ok" || (resp.ProtoMajor == 2) != h2 {
				t.Errorf("GET = %d %s %q; want 200 ok (h2 %v)", resp.StatusCode, resp.Proto, body, h2)
			}
		}
	})
	t.Run("the leaf carries the DNS names and the gateway's SPIFFE ID", func(t *testing.T) {
		cert := servedMeshCertificate(t, roots, addr, "api.example.com")
		if !slices.Equal(cert.DNSNames, first) || len(cert.URIs) != 1 || cert.URIs[0].String() != serviceID(t, "ingress") {
			t.Errorf("leaf DNS names %q, URIs %v; want %q and %s", cert.DNSNames, cert.URIs, first, serviceID(t, "ingress"))
		}
		c := p.certs()
		if info, ok := c.Certificates[config.IngressLeafSecret]; !ok || !slices.Equal(info.DNSNames, first) || c.Ingress == nil || c.Ingress.Leaf == nil {
			t.Errorf("/certs: %q = %+v, ingress %+v; want the leaf and its state", config.IngressLeafSecret, info, c.Ingress)
		}
	})
	t.Run("new DNS names get a new leaf", func(t *testing.T) {
		second := []string{"*.ingress.consul", "api.example.com", "web.example.com"}
		cp.setFor(ingressNode, "v2", ingressResources(upstream, second...))
		poll.UntilTrue(t, wait, "the new names refused", func() bool { st := p.certs().Ingress; return st != nil && st.LastError != "" })
		if cert := servedMeshCertificate(t, roots, addr, "api.example.com"); !slices.Equal(cert.DNSNames, first) {
			t.Errorf("while the new leaf is refused the listener presents %q, want the previous %q", cert.DNSNames, first)
		}
		svc.dns.Store(&second)
		poll.UntilTrue(t, wait, "the new leaf served", func() bool {
			return slices.Equal(servedMeshCertificate(t, roots, addr, "api.example.com").DNSNames, second)
		})
		if cert := servedMeshCertificate(t, roots, addr, "web.example.com"); !slices.Equal(cert.DNSNames, second) {
			t.Errorf("asking for web.example.com: %q", cert.DNSNames)
		}
	})
}

// servedMeshCertificate handshakes with addr asking for serverName and
// returns the certificate presented, verified against roots.
func servedMeshCertificate(t *testing.T, roots *x509.CertPool, addr, serverName string) *x509.Certificate {
	t.Helper()
	c := tls.Client(dialWithDeadline(t, addr), &tls.Config{RootCAs: roots, ServerName: serverName})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake for %s: %v", serverName, err)
	}
	return c.ConnectionState().PeerCertificates[0]
}
