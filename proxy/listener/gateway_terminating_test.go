package listener

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

const (
	extSNI  = "ext.default.dc1.internal.weft.local"
	dbSNI   = "db.default.dc1.internal.weft.local"
	peerSNI = "api.default.dc2.internal.weft.local"
)

var (
	extID = pkitest.ID("ext")
	tgwID = pkitest.ID("tgw")
)

// gatewayEnv is a listener Manager serving as a terminating gateway: its
// own leaf (tgw), the linked services' leaves and the mesh CA.
type gatewayEnv struct {
	*env
	ca     *pkitest.CA
	trust  *mtls.Trust
	leaves *mtls.Leaves
}

func newGatewayEnv(t *testing.T) *gatewayEnv {
	t.Helper()
	ca := pkitest.NewCA(t, "mesh")
	g := &gatewayEnv{ca: ca, trust: &mtls.Trust{}, leaves: &mtls.Leaves{}}
	creds := mtls.Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, tgwID)), Linked: g.leaves, Trust: g.trust}
	clusters := cluster.NewManager(cluster.Options{Credentials: creds})
	m := NewManager(Options{Clusters: clusters, Credentials: creds, DrainTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(m.Close)
	g.env = &env{t: t, clusters: clusters, m: m}
	return g
}

// terminatingChain is a chain for server name sni that terminates mTLS
// with leaf, allows only the allowed SPIFFE IDs and proxies to cluster.
func terminatingChain(sni, leaf, cluster string, allowed ...string) *listenerv3.FilterChain {
	var ctx tlsv3.DownstreamTlsContext
	if err := xdstest.DownstreamTLS(pkitest.TrustDomain).GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		panic(err)
	}
	ctx.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = leaf
	var principals []*rbacv3.Principal
	for _, id := range allowed {
		principals = append(principals, xdstest.Principal(id))
	}
	rules := xdstest.RBAC(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"intentions": xdstest.Policy(xdstest.AnyPermission(), principals...)})
	return &listenerv3.FilterChain{Name: cluster, FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{sni}},
		TransportSocket: xdstest.TransportSocket(&ctx),
		Filters:         []*listenerv3.Filter{xdstest.NetworkRBAC(rules), xdstest.TCPProxy(cluster)}}
}

func passthroughChain(sni, cluster string) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: cluster, FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{sni}},
		Filters: []*listenerv3.Filter{xdstest.TCPProxy(cluster)}}
}

// apply compiles a gateway listener of chains with a static cluster per
// backend and the mesh's roots, installs the roots and applies it.
func (g *gatewayEnv) apply(backends map[string]string, chains ...*listenerv3.FilterChain) *config.Runtime {
	g.t.Helper()
	l := &listenerv3.Listener{Name: "terminating_gateway", Address: xdstest.SocketAddress("127.0.0.1:0"), FilterChains: chains,
		ListenerFilters: []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}}}
	s := xds.State{
		Listeners: xds.Resources{Received: true, Items: map[string]proto.Message{l.Name: l}},
		Clusters:  xds.Resources{Received: true, Items: map[string]proto.Message{}},
		Secrets:   xds.Resources{Received: true, Items: map[string]proto.Message{"weft-roots": xdstest.RootsSecretOf(g.ca.PEM())}},
	}
	for name, addr := range backends {
		s.Clusters.Items[name] = xdstest.StaticCluster(name, xdstest.Endpoint(addr))
	}
	rt, err := config.Compile(s)
	if err != nil {
		g.t.Fatal(err)
	}
	g.trust.Set(rt.Secrets)
	g.mustApply(rt)
	return rt
}

// meshClient is a sidecar calling a linked service through the gateway:
// it presents cert, sends sni and accepts only the server identity want.
func (g *gatewayEnv) meshClient(cert tls.Certificate, sni, want string) *tls.Config {
	trust := &mtls.Trust{}
	setBundle(g.t, trust, g.ca)
	return mtls.Credentials{Leaf: pkitest.NewStaticLeaf(cert), Trust: trust}.ClientConfig(&mtls.Client{
		SNI: sni, TrustBundle: roots, PeerURISANs: []match.String{match.MustString(match.Exact, want, false)}})
}

// TestTerminatingGatewayChains: on one tls_inspector listener, a chain
// that terminates mTLS presents the linked service's leaf for its server
// name, authorizes the caller with its network RBAC and proxies the
// plaintext to its cluster; a chain without TLS passes TLS through; a
// chain whose linked leaf is missing fails its handshakes.
func TestTerminatingGatewayChains(t *testing.T) {
	g := newGatewayEnv(t)
	g.leaves.Set(map[string]mtls.Leaf{"ext": pkitest.NewStaticLeaf(g.ca.Leaf(t, extID))})
	ext := countingEcho(t)
	backendCA := pkitest.NewCA(t, "dc2 sidecars")
	peer := tlsNameServer(t, backendCA, peerSNI)
	g.apply(map[string]string{"ext": ext.addr, "db": ext.addr, "peer": peer},
		terminatingChain(extSNI, "weft-leaf/ext", "ext", webID),
		terminatingChain(dbSNI, "weft-leaf/db", "db", webID),
		passthroughChain(peerSNI, "peer"))
	addr := g.addr("terminating_gateway")

	t.Run("allowed caller reaches the linked service, which it sees as itself", func(t *testing.T) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", addr, g.meshClient(g.ca.Leaf(t, webID), extSNI, extID))
		if err != nil {
			t.Fatalf("handshake through the gateway: %v", err)
		}
		defer conn.Close()
		cs := conn.ConnectionState()
		if id, ok := mtls.PeerID(&cs); !ok || id.String() != extID {
			t.Errorf("the gateway presented %v, want the linked service's %s", id, extID)
		}
		conn.SetDeadline(time.Now().Add(wait))
		io.WriteString(conn, "hello ext")
		got := make([]byte, len("hello ext"))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "hello ext" {
			t.Errorf("echo = %q, %v", got, err)
		}
	})

	t.Run("denied caller is closed before the backend sees a byte", func(t *testing.T) {
		before := ext.bytes.Load()
		if got, err := echoOverTLS(t, addr, g.meshClient(g.ca.Leaf(t, lbID), extSNI, extID), "denied"); err == nil {
			t.Fatalf("a caller RBAC denies echoed %q", got)
		}
		if n := ext.bytes.Load() - before; n != 0 {
			t.Errorf("the backend saw %d bytes of a denied caller", n)
		}
	})

	t.Run("a client expecting the gateway's own identity is refused", func(t *testing.T) {
		if _, err := echoOverTLS(t, addr, g.meshClient(g.ca.Leaf(t, webID), extSNI, tgwID), "x"); err == nil || !strings.Contains(err.Error(), "is not allowed") {
			t.Errorf("handshake error = %v, want the client to refuse the ext identity", err)
		}
	})

	t.Run("a linked leaf not there yet fails the handshake", func(t *testing.T) {
		if _, err := echoOverTLS(t, addr, g.meshClient(g.ca.Leaf(t, webID), dbSNI, pkitest.ID("db")), "x"); err == nil {
			t.Error("a handshake succeeded without the db leaf")
		}
		g.leaves.Set(map[string]mtls.Leaf{"ext": pkitest.NewStaticLeaf(g.ca.Leaf(t, extID)), "db": pkitest.NewStaticLeaf(g.ca.Leaf(t, pkitest.ID("db")))})
		if got, err := echoOverTLS(t, addr, g.meshClient(g.ca.Leaf(t, webID), dbSNI, pkitest.ID("db")), "db now"); err != nil || got != "db now" {
			t.Errorf("once the leaf is there: %q, %v", got, err)
		}
	})

	t.Run("a chain without TLS passes TLS through", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(backendCA.Cert)
		tc := tls.Client(dial(t, addr), &tls.Config{RootCAs: pool, ServerName: peerSNI})
		if got, err := io.ReadAll(tc); err != nil || string(got) != peerSNI {
			t.Errorf("read %q, %v; want the backend's own answer over end-to-end TLS", got, err)
		}
	})
}

// TestTerminatingGatewayRBACChangeClosesConnections: a new configuration
// whose chain RBAC denies a caller closes that caller's open connections;
// the chain's TLS configuration survives the swap.
func TestTerminatingGatewayRBACChangeClosesConnections(t *testing.T) {
	g := newGatewayEnv(t)
	g.leaves.Set(map[string]mtls.Leaf{"ext": pkitest.NewStaticLeaf(g.ca.Leaf(t, extID))})
	ext := countingEcho(t)
	backends := map[string]string{"ext": ext.addr}
	g.apply(backends, terminatingChain(extSNI, "weft-leaf/ext", "ext", webID))
	addr := g.addr("terminating_gateway")

	open, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", addr, g.meshClient(g.ca.Leaf(t, webID), extSNI, extID))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open.SetDeadline(time.Now().Add(wait))
	io.WriteString(open, "ping")
	if _, err := io.ReadFull(open, make([]byte, 4)); err != nil {
		t.Fatalf("allowed connection: %v", err)
	}

	before := g.chainTLS("terminating_gateway", extSNI)
	g.apply(backends, terminatingChain(extSNI, "weft-leaf/ext", "ext", lbID)) // web is now denied
	if after := g.chainTLS("terminating_gateway", extSNI); after == nil || after != before {
		t.Error("the chain's TLS configuration was rebuilt although its TLS context did not change")
	}
	if _, err := io.ReadAll(open); err != nil && !isClosed(err) {
		t.Fatalf("reading the newly denied connection: %v", err)
	}
	if got, err := echoOverTLS(t, addr, g.meshClient(g.ca.Leaf(t, lbID), extSNI, extID), "lb now"); err != nil || got != "lb now" {
		t.Errorf("newly allowed caller: %q, %v", got, err)
	}
}

// chainTLS returns the TLS configuration the named listener's chain for
// serverName handshakes with.
func (g *gatewayEnv) chainTLS(name, serverName string) *tls.Config {
	g.t.Helper()
	g.m.mu.Lock()
	defer g.m.mu.Unlock()
	for _, b := range g.m.bound {
		if a := b.active.Load(); a.Name == name {
			return a.sniTLS[a.SNI.Match(serverName)]
		}
	}
	g.t.Fatalf("listener %q not bound", name)
	return nil
}
