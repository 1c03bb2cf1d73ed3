package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
)

const (
	gatewayNode     = "tgw-1"
	gatewayListener = "terminating_gateway"
	extHost         = "ext.example.com"
	extSNI          = "ext.default.dc1.internal.weft.local"
	wrongCASNI      = "legacy.default.dc1.internal.weft.local"
)

// linkedCertService signs with a pkitest CA for the service a request
// names (else the proxy's), records the requests, and refuses linked
// services until allowed.
type linkedCertService struct {
	certsv1.UnimplementedCertificateServiceServer
	ca    *pkitest.CA
	allow atomic.Bool

	mu   sync.Mutex
	reqs []*certsv1.SignRequest // proxy_id and service of each request
}

func (s *linkedCertService) Sign(_ context.Context, req *certsv1.SignRequest) (*certsv1.SignResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, &certsv1.SignRequest{ProxyId: req.GetProxyId(), Service: req.GetService()})
	s.mu.Unlock()
	svc := req.GetService()
	if svc == "" {
		svc, _, _ = strings.Cut(req.GetProxyId(), "-")
	} else if !s.allow.Load() {
		return nil, status.Errorf(codes.PermissionDenied, "token may not write service %q", svc)
	}
	id := pkitest.ID(svc)
	der, err := s.ca.SignCSR(req.GetCsr(), id, leafTTL)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &certsv1.SignResponse{Certificate: der, SpiffeId: id}, nil
}

func (s *linkedCertService) requests() []*certsv1.SignRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*certsv1.SignRequest(nil), s.reqs...)
}

// linkedChain is a terminating gateway's chain for server name sni: mesh
// mTLS presenting weft-leaf/<service>, network RBAC allowing only the
// allowed SPIFFE IDs, tcp_proxy to cluster.
func linkedChain(sni, service, cluster string, allowed ...string) *listenerv3.FilterChain {
	var ctx tlsv3.DownstreamTlsContext
	if err := xdstest.DownstreamTLS(trustDomain.String()).GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		panic(err)
	}
	ctx.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = "weft-leaf/" + service
	var principals []*rbacv3.Principal
	for _, id := range allowed {
		principals = append(principals, xdstest.Principal(id))
	}
	rules := xdstest.RBAC(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"intentions": xdstest.Policy(xdstest.AnyPermission(), principals...)})
	return &listenerv3.FilterChain{Name: cluster, FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{sni}},
		TransportSocket: xdstest.TransportSocket(&ctx), Filters: []*listenerv3.Filter{xdstest.NetworkRBAC(rules), xdstest.TCPProxy(cluster)}}
}

// originateTLS is the UpstreamTlsContext to a server outside the mesh:
// no client certificate, its CA inline, the host as SNI.
func originateTLS(caPEM []byte, sni string) *corev3.TransportSocket {
	return xdstest.TransportSocket(&tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: &tlsv3.CommonTlsContext{
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: caPEM}}}},
	}})
}

// externalHTTPS is a server outside the mesh: HTTPS with a certificate
// for extHost from its own CA, answering with whether it saw TLS.
func externalHTTPS(t *testing.T, ca *pkitest.CA) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "external over TLS: "+r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{extHost}})}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// TestTerminatingGateway: a proxy configured as a terminating gateway has
// the leaf of the linked service its chain presents (weft-leaf/ext)
// signed, asking with its proxy ID and the service; it is not ready until
// it has it, and says so. Then a sidecar that calls ext by its mesh SNI
// verifies ext's identity, is authorized by the chain's RBAC and reaches
// the HTTPS server outside the mesh, to which the gateway originates TLS
// verified against that server's CA; a cluster trusting another CA never
// reaches it.
func TestTerminatingGateway(t *testing.T) {
	tl := newTestLog(t)
	meshCA, extCA := pkitest.NewCA(t, "mesh"), pkitest.NewCA(t, "external")
	svc := &linkedCertService{ca: meshCA}
	cp := startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, svc) })
	backend := externalHTTPS(t, extCA)
	web, lb := pkitest.ID("web"), pkitest.ID("lb")
	cp.setFor(gatewayNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.WithGateway(&listenerv3.Listener{
			Name: gatewayListener, Address: xdstest.SocketAddress("127.0.0.1:0"),
			ListenerFilters: []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}},
			FilterChains: []*listenerv3.FilterChain{
				linkedChain(extSNI, "ext", "ext.default.dc1", web),
				linkedChain(wrongCASNI, "ext", "legacy.default.dc1", web),
			},
		}, "terminating-gateway")},
		resourcev3.ClusterType: {
			xdstest.WithTarget(xdstest.WithClusterTLS(xdstest.StaticCluster("ext.default.dc1", xdstest.Endpoint(backend)), originateTLS(extCA.PEM(), extHost)), "ext", "dc1", ""),
			xdstest.WithClusterTLS(xdstest.StaticCluster("legacy.default.dc1", xdstest.Endpoint(backend)), originateTLS(pkitest.NewCA(t, "other").PEM(), extHost)),
		},
		resourcev3.SecretType: {xdstest.RootsSecretOf(meshCA.PEM())},
	})
	p := startProxyWith(t, proxy.Options{ProxyID: gatewayNode, XDSAddrs: []string{cp.addr}, Logger: tl.slog()})

	poll.UntilTrue(t, wait, "readiness waiting for the ext leaf", func() bool {
		code, body := p.adminGet("/ready")
		return code == http.StatusServiceUnavailable &&
			strings.Contains(string(body), `waiting for the leaf certificate of linked service "ext"`) && strings.Contains(string(body), "may not write service")
	})
	svc.allow.Store(true)
	p.waitReady()

	for _, r := range svc.requests() {
		if r.GetProxyId() != gatewayNode || r.GetService() != "ext" {
			t.Errorf("SignRequest{proxy_id: %q, service: %q}; want only {%q, ext}: the gateway presents no leaf of its own", r.GetProxyId(), r.GetService(), gatewayNode)
		}
	}
	certs := p.certs()
	if leaf := certs.Linked["ext"].Leaf; leaf == nil || leaf.SPIFFEID != pkitest.ID("ext") {
		t.Errorf("/certs linked ext = %+v, want a leaf for %s", certs.Linked["ext"], pkitest.ID("ext"))
	}
	if certs.Identity.Leaf != nil {
		t.Errorf("/certs own leaf = %+v, want none", certs.Identity.Leaf)
	}

	addr := p.listenerAddr(gatewayListener)
	caller := func(id, sni string) *tls.Config {
		trust := &mtls.Trust{}
		b, err := mtls.ParseBundle(meshCA.PEM())
		if err != nil {
			t.Fatal(err)
		}
		trust.Set(map[string]*mtls.Bundle{"weft-roots": b})
		return mtls.Credentials{Leaf: pkitest.NewStaticLeaf(meshCA.Leaf(t, id)), Trust: trust}.ClientConfig(&mtls.Client{
			SNI: sni, TrustBundle: "weft-roots", PeerURISANs: []match.String{match.MustString(match.Exact, pkitest.ID("ext"), false)}})
	}
	tests := []struct {
		name   string
		caller string
		sni    string
		want   string // the response body; "" for a connection closed without one
	}{
		{"allowed caller reaches the external server over TLS", web, extSNI, "external over TLS: " + extHost},
		{"caller the intentions deny", lb, extSNI, ""},
		{"cluster trusting another CA", web, wrongCASNI, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := getOverTLS(t, addr, caller(tt.caller, tt.sni))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %q, want the connection closed", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("GET through the gateway = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// What the gateway sent to ext: the one connection that reached it.
	ext := map[string]string{"gateway": "terminating-gateway", "service": "ext", "datacenter": "dc1", "peer": ""}
	poll.UntilTrue(t, wait, "the gateway's connection to ext counted, with its bytes", func() bool {
		mfs := p.metricsOf()
		return sum(mfs, "weft_proxy_gateway_connections_total", ext) == 1 && sum(mfs, "weft_proxy_gateway_bytes_total", with(ext, "flow", "sent")) > 0
	})
}

// getOverTLS sends GET / over a new TLS connection to addr and returns
// the response body.
func getOverTLS(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	tc := tls.Client(dialWithDeadline(t, addr), cfg)
	if err := tc.Handshake(); err != nil {
		return "", err
	}
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: "+extHost+"\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
