package xds

import (
	"fmt"
	"slices"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// BenchmarkSotWEndpointFlip has the state-of-the-world client take EDS
// responses that each carry every subscribed load assignment, of which one
// differs from the accepted state by one endpoint's health, up to the
// candidate state handed to the Applier (which accepts it and does
// nothing). Decoding the response from the wire is not included.
func BenchmarkSotWEndpointFlip(b *testing.B) {
	for _, clusters := range []int{50, 500} {
		b.Run(fmt.Sprintf("clusters=%d/endpoints=10", clusters), func(b *testing.B) {
			side := xdstest.ScaledSidecar(xdstest.Scale{Clusters: clusters, EndpointsPerCluster: 10})
			flipped := slices.Clone(side.Loads)
			flipped[0] = xdstest.FlipHealth(flipped[0], 0)
			resps := [2]*discoveryv3.DiscoveryResponse{
				edsResponse("v1", flipped),
				edsResponse("v2", side.Loads),
			}
			c := New(Options{Apply: func(State) (Subscriptions, error) { return Subscriptions{}, nil }})
			for _, cla := range side.Loads {
				c.subs.Endpoints = append(c.subs.Endpoints, cla.GetClusterName())
			}
			c.subs = c.subs.normalize()
			t := lookupType(EndpointType)
			if _, err := c.apply(t, edsResponse("v0", side.Loads)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := c.apply(t, resps[i%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func edsResponse[M proto.Message](version string, msgs []M) *discoveryv3.DiscoveryResponse {
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: EndpointType, VersionInfo: version}
	for _, m := range msgs {
		resp.Resources = append(resp.Resources, xdstest.Any(m))
	}
	return resp
}
