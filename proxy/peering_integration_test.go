package proxy_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// A web sidecar in dc1 calls services dc2 exports, through dc2's mesh
// gateway, as the control plane configures both (docs/xds.md, "Cluster
// peering and mesh gateways").
const (
	meshGatewayNode = "mgw-1"
	meshGatewayName = "mesh_gateway"
	toPeer          = "peer:127.0.0.1:0"
	// apiSNI is what dc2's gateway routes to its api, exported to dc1;
	// billingSNI is a name it routes nowhere (billing is not exported to
	// dc1).
	apiSNI     = "api.default.default.dc1.external.dc2.example"
	billingSNI = "billing.default.default.dc1.external.dc2.example"
)

// peerCluster is the web sidecar's cluster of a dc2 service: TLS with the
// service's SNI to addr (a mesh gateway), the service's target stated.
func peerCluster(service, sni, addr string) types.Resource {
	c := xdstest.StaticCluster(service+".default.default.dc2.peer", xdstest.Endpoint(addr))
	xdstest.WithClusterTLS(c, xdstest.UpstreamTLS(sni, pkitest.ID(service), "http/1.1"))
	return xdstest.WithTarget(c, service, "", "dc2")
}

// peeredAPI is dc2's api behind its sidecar: mTLS as api, answering
// "api" and closing each connection, so that the gateway's connections
// end (and count their bytes) once a request is answered.
func peeredAPI(t *testing.T, ca *pkitest.CA) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "api")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, pkitest.ID("api"))}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// TestCallsToAPeerSayWhyTheyFail: a sidecar's request to a peer's
// service that cannot connect is answered 503 with x-weft-error
// peer_unreachable (a closed port where the gateway should be) or
// no_exported_service (Weft's mesh gateway refusing the server name with
// unrecognized_name), counted by reason; a request it routes passes, and
// the gateway's metrics name the service, its datacenter and the peer.
func TestCallsToAPeerSayWhyTheyFail(t *testing.T) {
	tl := newTestLog(t)
	ca := pkitest.NewCA(t, "mesh")
	cp := startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) {
		certsv1.RegisterCertificateServiceServer(s, &linkedCertService{ca: ca})
	})
	gatewayChain := &listenerv3.FilterChain{Name: apiSNI, FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{apiSNI}},
		Filters: []*listenerv3.Filter{xdstest.TCPProxy(apiSNI)}}
	cp.setFor(meshGatewayNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.WithGateway(&listenerv3.Listener{
			Name: meshGatewayName, Address: xdstest.SocketAddress("127.0.0.1:0"),
			ListenerFilters: []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}},
			FilterChains: []*listenerv3.FilterChain{gatewayChain},
		}, "mesh-gateway")},
		resourcev3.ClusterType: {xdstest.WithTarget(xdstest.StaticCluster(apiSNI, xdstest.Endpoint(peeredAPI(t, ca))), "api", "dc2", "dc1")},
	})
	gw := startProxyWith(t, proxy.Options{ProxyID: meshGatewayNode, XDSAddrs: []string{cp.addr}, Logger: tl.slog().With("proxy", "mgw")})
	gw.waitReady()
	gateway := gw.listenerAddr(meshGatewayName)

	routes := xdstest.Routes("peer",
		xdstest.Route(xdstest.Prefix("/billing"), xdstest.ToCluster("billing.default.default.dc2.peer")),
		xdstest.Route(xdstest.Prefix("/db"), xdstest.ToCluster("db.default.default.dc2.peer")),
		xdstest.Route(xdstest.Prefix("/"), xdstest.ToCluster("api.default.default.dc2.peer")))
	cp.setFor(webNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerInline(toPeer, "127.0.0.1:0", routes)},
		resourcev3.ClusterType: {
			peerCluster("api", apiSNI, gateway),
			peerCluster("billing", billingSNI, gateway),
			peerCluster("db", "db.default.default.dc1.external.dc2.example", testnet.ClosedPort(t)),
		},
		resourcev3.SecretType: {xdstest.RootsSecretOf(ca.PEM())},
	})
	web := startProxyWith(t, proxy.Options{ProxyID: webNode, XDSAddrs: []string{cp.addr}, Logger: tl.slog().With("proxy", "web")})
	web.waitReady()
	base := "http://" + web.listenerAddr(toPeer)

	tests := []struct {
		path, want string
	}{
		{"/db", "503 peer_unreachable"},
		{"/billing", "503 no_exported_service"},
		{"/", "200 api"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := getStatus(t, base+tt.path); got != tt.want {
				t.Errorf("GET %s = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	mfs := web.metricsOf()
	for _, reason := range []string{"peer_unreachable", "no_exported_service"} {
		if got := sum(mfs, "weft_proxy_requests_total", map[string]string{"reason": reason, "code": "503"}); got != 1 {
			t.Errorf("web: weft_proxy_requests_total{reason=%q} = %v, want 1", reason, got)
		}
	}

	exported := map[string]string{"gateway": "mesh-gateway", "service": "api", "datacenter": "dc2", "peer": "dc1"}
	poll.UntilTrue(t, wait, "the gateway's connection to api counted, with its bytes", func() bool {
		mfs := gw.metricsOf()
		return sum(mfs, "weft_proxy_gateway_connections_total", exported) == 1 &&
			sum(mfs, "weft_proxy_gateway_bytes_total", with(exported, "flow", "received")) > 0 &&
			sum(mfs, "weft_proxy_gateway_bytes_total", with(exported, "flow", "sent")) > 0
	})
	if n := seriesOf(gw.metricsOf(), "weft_proxy_gateway_connections_total", map[string]string{"service": "billing"}); n != 0 {
		t.Errorf("the gateway counts %d series of billing, which it routes nowhere", n)
	}
}

// getStatus GETs url: "<status> <body>", or "<status> <x-weft-error>" for
// the sidecar's own replies.
func getStatus(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if reason := resp.Header.Get("x-weft-error"); reason != "" {
		return fmt.Sprintf("%d %s", resp.StatusCode, reason)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// with returns labels plus name=value.
func with(labels map[string]string, name, value string) map[string]string {
	out := map[string]string{name: value}
	for k, v := range labels {
		out[k] = v
	}
	return out
}
