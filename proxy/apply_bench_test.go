package proxy

import (
	"fmt"
	"maps"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/xds"
)

// BenchmarkApplyEndpointFlip applies updates in which one endpoint of one
// cluster flips health to a sidecar holding clusters × endpoints and HTTP
// listeners whose RDS route configurations hold safe_regex routes. Each
// update is what the delta xDS client hands the applier: the accepted
// state with a new endpoints map in which one load assignment is a new
// message. The two sizes show how the cost of one flip grows with the
// configuration.
func BenchmarkApplyEndpointFlip(b *testing.B) {
	for _, sc := range []xdstest.Scale{
		{Clusters: 50, EndpointsPerCluster: 10, Listeners: 1, RegexRoutesPerListener: 5},
		{Clusters: 500, EndpointsPerCluster: 10, Listeners: 10, RegexRoutesPerListener: 5},
	} {
		name := fmt.Sprintf("clusters=%d/endpoints=%d/regex_routes=%d", sc.Clusters, sc.EndpointsPerCluster, sc.Listeners*sc.RegexRoutesPerListener)
		b.Run(name, func(b *testing.B) { benchmarkEndpointFlip(b, sc) })
	}
}

func benchmarkEndpointFlip(b *testing.B, sc xdstest.Scale) {
	p := newUnstartedProxy(b)
	side := xdstest.ScaledSidecar(sc)
	s := scaledState(side)
	if _, err := p.apply(s); err != nil {
		b.Fatal(err)
	}
	flip := [2]proto.Message{xdstest.FlipHealth(side.Loads[0], 0), side.Loads[0]}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		next := s
		next.Endpoints.Items = maps.Clone(s.Endpoints.Items)
		next.Endpoints.Items[side.Loads[0].GetClusterName()] = flip[i%2]
		if _, err := p.apply(next); err != nil {
			b.Fatal(err)
		}
		s = next
	}
}

// scaledState is the accepted xDS state holding sc.
func scaledState(sc xdstest.Sidecar) xds.State {
	var s xds.State
	for _, r := range []*xds.Resources{&s.Listeners, &s.Clusters, &s.Routes, &s.Endpoints} {
		r.Received, r.Items = true, map[string]proto.Message{}
	}
	for _, l := range sc.Listeners {
		s.Listeners.Items[l.GetName()] = l
	}
	for _, r := range sc.Routes {
		s.Routes.Items[r.GetName()] = r
	}
	for _, c := range sc.Clusters {
		s.Clusters.Items[c.GetName()] = c
	}
	for _, cla := range sc.Loads {
		s.Endpoints.Items[cla.GetClusterName()] = cla
	}
	return s
}
