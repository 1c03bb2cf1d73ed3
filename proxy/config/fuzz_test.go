package config

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// FuzzCompile feeds arbitrary bytes, decoded as each resource type the way
// the xDS client decodes them, to Compile. It must never panic.
func FuzzCompile(f *testing.F) {
	for _, m := range []proto.Message{
		xdstest.TCPListener("l", "127.0.0.1:1", "c"),
		xdstest.HTTPListenerRDS("l", "127.0.0.1:1", "r"),
		xdstest.HTTPListenerInline("l", "0.0.0.0:1", xdstest.RouteConfig("r", "c")),
		xdstest.RouteConfig("r", "c"),
		xdstest.EDSCluster("c"),
		withHTTP2(xdstest.StaticCluster("c", xdstest.Endpoint("127.0.0.1:2"))),
		xdstest.LoadAssignment("c", xdstest.Endpoint("10.0.0.1:1")),
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
