package listener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/xds"
)

// sniRuntime compiles a mesh gateway's listener on 127.0.0.1:0: one
// tcp_proxy chain per cluster, matched by the server names given, and the
// clusters, one static endpoint each.
func sniRuntime(t *testing.T, chains map[string][]string, addrs map[string]string) *config.Runtime {
	t.Helper()
	l := &listenerv3.Listener{
		Name:    "mesh_gateway",
		Address: xdstest.SocketAddress("127.0.0.1:0"),
		ListenerFilters: []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}},
	}
	s := xds.State{Listeners: xds.Resources{Received: true, Items: map[string]proto.Message{}}, Clusters: xds.Resources{Received: true, Items: map[string]proto.Message{}}}
	for cluster, names := range chains {
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{Name: cluster,
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: names},
			Filters:          []*listenerv3.Filter{xdstest.TCPProxy(cluster)}})
	}
	for cluster, addr := range addrs {
		s.Clusters.Items[cluster] = xdstest.StaticCluster(cluster, xdstest.Endpoint(addr))
	}
	s.Listeners.Items[l.Name] = l
	rt, err := config.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// tlsNameServer serves TLS with a certificate for name, answering each
// connection with name and closing.
func tlsNameServer(t *testing.T, ca *pkitest.CA, name string) string {
	t.Helper()
	cert := ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{name}})
	return testnet.Serve(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		defer tc.Close()
		if tc.Handshake() == nil {
			io.WriteString(tc, name)
		}
	})
}

// TestMeshGatewayRoutesBySNI: the gateway routes by the ClientHello's
// server name and passes TLS through: the client verifies the backend's
// own certificate, which the gateway does not hold.
func TestMeshGatewayRoutesBySNI(t *testing.T) {
	ca := pkitest.NewCA(t, "backends")
	a := tlsNameServer(t, ca, "api.default.dc2.internal.example")
	b := tlsNameServer(t, ca, "db.default.dc2.internal.example")
	e := newEnv(t, time.Second)
	e.mustApply(sniRuntime(t, map[string][]string{
		"api": {"api.default.dc2.internal.example"},
		"dc3": {"*.dc3.internal.example"},
		"db":  {"db.default.dc2.internal.example", "*.default.dc2.internal.example"},
	}, map[string]string{"api": a, "db": b, "dc3": b}))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM())

	tests := []struct {
		name       string
		serverName string
		want       string // what the backend answers; "" for a closed connection
	}{
		{"exact name", "api.default.dc2.internal.example", "api.default.dc2.internal.example"},
		{"exact name, upper case", "API.default.dc2.internal.example", "api.default.dc2.internal.example"},
		{"second exact name of a chain", "db.default.dc2.internal.example", "db.default.dc2.internal.example"},
		{"unknown name", "web.default.dc2.internal.example2", ""},
		{"no server name", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dial(t, e.addr("mesh_gateway"))
			verify := tt.want
			tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: tt.serverName,
				InsecureSkipVerify: tt.serverName == "", // still sends no SNI
				VerifyConnection: func(cs tls.ConnectionState) error {
					if verify == "" {
						return nil
					}
					_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: verify})
					return err
				}})
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(tc)
			if tt.want == "" {
				if err == nil && len(got) > 0 {
					t.Fatalf("read %q through the gateway, want the connection closed", got)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("read %q, %v; want %q from the backend, over TLS end to end", got, err, tt.want)
			}
		})
	}
}

// clientHello returns the bytes of a TLS ClientHello for serverName, as
// crypto/tls's client sends it first.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go tls.Client(client, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
	defer client.Close()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// TestMeshGatewayAnswersUnknownNamesWithAnAlert: a ClientHello whose
// server name no chain takes (or without one) gets a fatal TLS
// unrecognized_name alert record, then the connection closes; crypto/tls
// reports it as the error weft-proxy maps to no_exported_service. The
// backend never hears of it.
func TestMeshGatewayAnswersUnknownNamesWithAnAlert(t *testing.T) {
	hits := make(chan string, 1)
	backend := testnet.Serve(t, func(c net.Conn) { hits <- "connected"; c.Close() })
	e := newEnv(t, time.Second)
	e.mustApply(sniRuntime(t, map[string][]string{"api": {"api.default.default.dc1.external.dc2.example"}}, map[string]string{"api": backend}))
	for _, name := range []string{"billing.default.default.dc1.external.dc2.example", ""} {
		t.Run("raw ClientHello for "+strconv.Quote(name), func(t *testing.T) {
			c := dial(t, e.addr("mesh_gateway"))
			if _, err := c.Write(clientHello(t, name)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			want := []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70} // alert, TLS 1.2, length 2, fatal, unrecognized_name (112)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read % x, %v; want the alert record % x, then EOF", got, err, want)
			}
		})
	}
	tc := tls.Client(dial(t, e.addr("mesh_gateway")), &tls.Config{ServerName: "billing.default.default.dc1.external.dc2.example", InsecureSkipVerify: true})
	if err := tc.Handshake(); err == nil || err.Error() != "remote error: tls: unrecognized name" {
		t.Errorf("handshake: %v; want remote error: tls: unrecognized name", err)
	}
	select {
	case <-hits:
		t.Fatal("the gateway connected to the backend for a server name it does not route")
	default:
	}
}

// TestMeshGatewayWildcards: a wildcard takes names under its suffix that no
// exact name takes; the longest suffix wins.
func TestMeshGatewayWildcards(t *testing.T) {
	ca := pkitest.NewCA(t, "backends")
	names := []string{"x.default.dc2.internal.example", "y.dc3.internal.example"}
	a := tlsNameServer(t, ca, names[0])
	b := tlsNameServer(t, ca, names[1])
	e := newEnv(t, time.Second)
	e.mustApply(sniRuntime(t, map[string][]string{
		"dc2": {"*.default.dc2.internal.example"},
		"any": {"*.internal.example"},
	}, map[string]string{"dc2": a, "any": b}))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM())
	for _, tt := range []struct{ serverName, want string }{
		{names[0], names[0]}, // *.default.dc2… beats *.internal.example
		{names[1], names[1]},
	} {
		tc := tls.Client(dial(t, e.addr("mesh_gateway")), &tls.Config{RootCAs: roots, ServerName: tt.serverName})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(tc)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: read %q, %v; want %q", tt.serverName, got, err, tt.want)
		}
	}
}

// TestMeshGatewayRefusesPlaintext: bytes that are not a ClientHello are
// never forwarded.
func TestMeshGatewayRefusesPlaintext(t *testing.T) {
	hits := make(chan string, 1)
	backend := testnet.Serve(t, func(c net.Conn) { hits <- "connected"; c.Close() })
	e := newEnv(t, time.Second)
	e.mustApply(sniRuntime(t, map[string][]string{"c": {"*.example"}}, map[string]string{"c": backend}))
	c := dial(t, e.addr("mesh_gateway"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
	if got := readAll(t, c); got != "" {
		t.Fatalf("read %q, want the connection closed", got)
	}
	select {
	case <-hits:
		t.Fatal("the gateway connected to the backend for a plaintext request")
	default:
	}
}

func TestSNIListenerRejects(t *testing.T) {
	inspector := []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}}
	chain := func(names ...string) *listenerv3.FilterChain {
		return &listenerv3.FilterChain{FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: names}, Filters: []*listenerv3.Filter{xdstest.TCPProxy("c")}}
	}
	tests := []struct {
		name    string
		chains  []*listenerv3.FilterChain
		wantErr string
	}{
		{"duplicate exact name", []*listenerv3.FilterChain{chain("a.example"), chain("A.example")}, `"A.example": also matched by filter chain`},
		{"duplicate wildcard", []*listenerv3.FilterChain{chain("*.example"), chain("*.example")}, "also matched by filter chain"},
		{"bad wildcard", []*listenerv3.FilterChain{chain("a*.example")}, "not a server name"},
		{"bare star", []*listenerv3.FilterChain{chain("*")}, `a wildcard must be "*." followed by a domain`},
		{"other match field", []*listenerv3.FilterChain{{FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a"}, TransportProtocol: "tls"}, Filters: []*listenerv3.Filter{xdstest.TCPProxy("c")}}}, "transport_protocol"},
		{"HTTP chain", []*listenerv3.FilterChain{{FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a"}}, Filters: []*listenerv3.Filter{xdstest.HCM(&hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: xdstest.RouteConfig("r", "c")}})}}}, "only tcp_proxy is supported"},
		{"no chains", nil, "no filter_chains"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &listenerv3.Listener{Name: "gw", Address: xdstest.SocketAddress("127.0.0.1:0"), ListenerFilters: inspector, FilterChains: tt.chains}
			s := xds.State{Listeners: xds.Resources{Received: true, Items: map[string]proto.Message{"gw": l}},
				Clusters: xds.Resources{Received: true, Items: map[string]proto.Message{"c": &clusterv3.Cluster{Name: "c"}}}}
			_, err := config.Compile(s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Compile: %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
