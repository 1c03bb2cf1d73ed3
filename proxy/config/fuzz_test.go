package config

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// FuzzCompile feeds arbitrary bytes, decoded as each resource type the way
// the xDS client decodes them, to Compile. It must never panic. The seeds
// include mTLS listeners and clusters, RBAC filters and a trust bundle.
func FuzzCompile(f *testing.F) {
	for _, m := range []proto.Message{
		xdstest.TCPListener("l", "127.0.0.1:1", "c"),
		xdstest.HTTPListenerRDS("l", "127.0.0.1:1", "r"),
		xdstest.HTTPListenerInline("l", "0.0.0.0:1", xdstest.RouteConfig("r", "c")),
		xdstest.RouteConfig("r", "c"),
		xdstest.EDSCluster("c"),
		withHTTP2(xdstest.StaticCluster("c", xdstest.Endpoint("127.0.0.1:2"))),
		xdstest.LoadAssignment("c", xdstest.Endpoint("10.0.0.1:1")),
		xdstest.WithListenerTLS(xdstest.Listener("l", "127.0.0.1:1",
			xdstest.NetworkRBAC(xdstest.RBAC(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"p": xdstest.Policy(xdstest.AnyPermission(), xdstest.Principal("spiffe://weft.local/x"))})),
			xdstest.TCPProxy("c")), xdstest.DownstreamTLS("weft.local")),
		xdstest.WithListenerTLS(xdstest.Listener("l", "127.0.0.1:1", xdstest.HCM(&hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: xdstest.ADS(), RouteConfigName: "r"}},
			HttpFilters: []*hcmv3.HttpFilter{xdstest.HTTPRBAC(xdstest.RBAC(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
				"p": xdstest.Policy([]*rbacv3.Permission{xdstest.PathPrefix("/admin")}, xdstest.Principal("spiffe://weft.local/x")),
			})), xdstest.Router()},
		})), xdstest.DownstreamTLS("weft.local", "h2", "http/1.1")),
		xdstest.WithClusterTLS(xdstest.EDSCluster("c"), xdstest.UpstreamTLS("c", "spiffe://weft.local/c", "h2")),
		xdstest.RootsSecretOf([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")),
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []proto.Message{
			new(listenerv3.Listener), new(clusterv3.Cluster),
			new(routev3.RouteConfiguration), new(endpointv3.ClusterLoadAssignment),
			new(tlsv3.Secret),
		} {
			if proto.Unmarshal(b, m) != nil {
				continue
			}
			if m.(interface{ ValidateAll() error }).ValidateAll() != nil {
				continue
			}
			Compile(state(m))
		}
	})
}
