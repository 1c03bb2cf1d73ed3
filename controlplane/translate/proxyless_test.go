package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weft-mesh/weft/catalog"
)

func TestProxyless(t *testing.T) {
	snap := &catalog.Snapshot{Datacenter: "dc1", Endpoints: apiEndpoints()}
	r := Proxyless(snap, testMesh)
	if len(r.Listeners) != 1 || r.Listeners[0].GetName() != "api" || r.Listeners[0].GetApiListener() == nil {
		t.Fatalf("want one API listener named api, got %v", r.Listeners)
	}
	if len(r.Clusters) != 1 || r.Clusters[0].GetTransportSocket() == nil {
		t.Fatal("the proxyless cluster must carry mTLS through certificate providers")
	}
	cla := r.Endpoints[0]
	// api-1 passing (weight 1), api-3 warning with warning weight 2: both
	// healthy, each its own locality; the unhealthy two are left out.
	if len(cla.GetEndpoints()) != 2 || cla.GetEndpoints()[1].GetLoadBalancingWeight().GetValue() != 2 {
		t.Fatalf("localities = %v", cla.GetEndpoints())
	}
	for _, m := range allResources(r) {
		if err := m.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
			t.Error(err)
		}
	}
}

// TestTranslatorProxyless checks that the incremental proxyless resources
// equal Proxyless's after every change, and are the same pointer when no
// instance changed.
func TestTranslatorProxyless(t *testing.T) {
	base := ringCatalog(5)
	x := NewTranslator()
	first := x.Proxyless(base, testMesh)
	if again := x.Proxyless(cloneSnapshot(base), testMesh); again != first {
		t.Error("an unchanged catalog got new proxyless resources")
	}
	for _, v := range variants(base) {
		for _, snap := range []*catalog.Snapshot{v.snap, base} {
			got, want := x.Proxyless(snap, testMesh), Proxyless(snap, testMesh)
			if diff := cmp.Diff(allResources(want), allResources(got), protocmp.Transform()); diff != "" {
				t.Errorf("%s: proxyless resources differ (-full +incremental):\n%s", v.name, diff)
			}
		}
	}
}
