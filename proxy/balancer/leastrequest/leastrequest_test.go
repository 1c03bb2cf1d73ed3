package leastrequest

import (
	"testing"

	"github.com/weft-mesh/weft/proxy/balancer"
	bt "github.com/weft-mesh/weft/proxy/balancer/balancertest"
)

func TestAvoidsLoadedEndpoints(t *testing.T) {
	eps := bt.Endpoints(1, 1, 1, 1)
	eps[0].Active.Store(10) // busy
	eps[1].Active.Store(5)
	p := Builder(0)(eps)
	got := bt.Count(t, p, 10000, bt.NoHash)
	// e0 wins only when both draws are e0 (1/16), e1 only against e0 or itself.
	if share := float64(got[eps[0].Address]) / 10000; share > 0.09 {
		t.Errorf("busiest endpoint got %.3f of picks, want about 1/16: %v", share, got)
	}
	if got[eps[2].Address]+got[eps[3].Address] < 7000 {
		t.Errorf("idle endpoints got %v, want most picks", got)
	}
}

func TestChoiceCount(t *testing.T) {
	eps := bt.Endpoints(1, 1, 1, 1, 1, 1, 1, 1)
	for i := range eps[1:] {
		eps[i+1].Active.Store(1)
	}
	// e0, the only idle endpoint, is missed only when no draw hits it:
	// (7/8)^2 ≈ 77 % with 2 choices, (7/8)^4 ≈ 59 % with 4; 8 choices
	// scan all 8 endpoints.
	tests := []struct {
		choices uint32
		want    float64
	}{{2, 1 - 0.766}, {4, 1 - 0.586}, {8, 1}}
	for _, tt := range tests {
		got := bt.Count(t, Builder(tt.choices)(eps), 20000, bt.NoHash)
		bt.Within(t, got, map[string]float64{eps[0].Address: tt.want}, 20000, 0.02)
	}
}

func TestSmallClustersAreScannedWhole(t *testing.T) {
	eps := bt.Endpoints(1, 1)
	eps[0].Active.Store(3)
	if got := bt.Count(t, Builder(2)(eps), 1000, bt.NoHash); got[eps[0].Address] != 0 {
		t.Errorf("picks = %v, want none on the busier of two hosts", got)
	}
	eps[0].Active.Store(0)
	got := bt.Count(t, Builder(2)(eps), 10000, bt.NoHash)
	bt.Within(t, got, map[string]float64{eps[0].Address: .5}, 10000, 0.03)
}

func TestWeightsWithoutLoad(t *testing.T) {
	eps := bt.Endpoints(3, 1)
	got := bt.Count(t, Builder(2)(eps), 40000, bt.NoHash)
	// Equal load: the first draw wins, so picks follow the weights.
	bt.Within(t, got, map[string]float64{eps[0].Address: .75, eps[1].Address: .25}, 40000, 0.02)
}

func TestSingleEndpointAndEmpty(t *testing.T) {
	eps := bt.Endpoints(1)
	if got := bt.Count(t, Builder(2)(eps), 10, bt.NoHash); got[eps[0].Address] != 10 {
		t.Errorf("single endpoint picks = %v", got)
	}
	if _, err := Builder(2)(nil).Pick(balancer.PickInfo{}); err != balancer.ErrNoEndpoint {
		t.Errorf("Pick on no endpoints: %v", err)
	}
}

func TestLockFree(t *testing.T) {
	p := Builder(2)(bt.Endpoints(1, 2, 3))
	bt.NoLocks(t, p)
	bt.NoAllocs(t, p, balancer.PickInfo{})
	bt.Concurrent(t, p, bt.NoHash)
}

func BenchmarkPickLeastRequest(b *testing.B) { bt.Benchmark(b, Builder(2), balancer.PickInfo{}) }
