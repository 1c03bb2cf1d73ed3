package translate

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// TestTranslateValid checks that every resource of every golden case, with
// and without mTLS, passes Envoy's own validation, that each proxy's
// resources are what the publisher requires (Consistent: every EDS cluster
// has its load assignment, every RDS name its route configuration), and
// that every cluster a route or listener names is among them.
func TestTranslateValid(t *testing.T) {
	for _, tt := range allGoldenCases() {
		for _, mesh := range []Mesh{tt.mesh, testMesh} {
			for id, r := range Translate(tt.snap, mesh).Proxies {
				for _, m := range allResources(r) {
					if err := m.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
						t.Errorf("%s: proxy %s: %v", tt.name, id, err)
					}
				}
				checkConsistent(t, tt.name+": proxy "+id, r)
			}
		}
	}
}

func checkConsistent(t *testing.T, what string, r *Resources) {
	t.Helper()
	snap, err := cachev3.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ListenerType: asResources(r.Listeners),
		resource.ClusterType:  asResources(r.Clusters),
		resource.EndpointType: asResources(r.Endpoints),
		resource.RouteType:    asResources(r.Routes),
		resource.SecretType:   asResources(r.Secrets),
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := snap.Consistent(); err != nil {
		t.Errorf("%s: not consistent: %v", what, err)
	}
	var clusters []string
	for _, c := range r.Clusters {
		clusters = append(clusters, c.Name)
	}
	for _, name := range referencedClusters(t, r) {
		if !slices.Contains(clusters, name) {
			t.Errorf("%s: cluster %q is referenced but not sent", what, name)
		}
	}
}

// referencedClusters lists the clusters the proxy's tcp_proxy filters and
// routes name.
func referencedClusters(t *testing.T, r *Resources) []string {
	var out []string
	var chains []*listenerv3.FilterChain
	for _, l := range r.Listeners {
		chains = append(chains, l.FilterChains...)
		if l.DefaultFilterChain != nil {
			chains = append(chains, l.DefaultFilterChain)
		}
	}
	for _, fc := range chains {
		for _, f := range fc.Filters {
			if f.Name != tcpProxyFilter {
				continue
			}
			var tp tcpproxyv3.TcpProxy
			if err := f.GetTypedConfig().UnmarshalTo(&tp); err != nil {
				t.Fatal(err)
			}
			out = append(out, tp.GetCluster())
		}
	}
	for _, rc := range r.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, rt := range vh.Routes {
				a := rt.GetRoute()
				if a.GetCluster() != "" {
					out = append(out, a.GetCluster())
				}
				for _, cw := range a.GetWeightedClusters().GetClusters() {
					out = append(out, cw.Name)
				}
			}
		}
	}
	return out
}

func asResources[T types.Resource](ms []T) []types.Resource {
	out := make([]types.Resource, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// TestTranslationIsByteStable checks that translating a catalog again
// serializes every resource to the same bytes, typed configs packed in
// Any included: the publisher's versions are hashes of these bytes, and
// replicas must agree on them. Map fields (RBAC policies) iterate in a
// random order, so each case is translated several times.
func TestTranslationIsByteStable(t *testing.T) {
	det := proto.MarshalOptions{Deterministic: true}
	for _, tt := range allGoldenCases() {
		first := map[string][]byte{}
		for round := range 8 {
			for id, r := range Translate(tt.snap, tt.mesh).Proxies {
				for i, m := range allResources(r) {
					b, err := det.Marshal(m)
					if err != nil {
						t.Fatal(err)
					}
					key := fmt.Sprintf("%s/%d", id, i)
					if round == 0 {
						first[key] = b
					} else if !bytes.Equal(first[key], b) {
						t.Fatalf("%s: proxy %s resource %d serializes differently on round %d", tt.name, id, i, round)
					}
				}
			}
		}
	}
}
