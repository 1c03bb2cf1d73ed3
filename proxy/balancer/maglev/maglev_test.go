package maglev

import (
	"testing"

	"github.com/weft-mesh/weft/proxy/balancer"
	bt "github.com/weft-mesh/weft/proxy/balancer/balancertest"
)

func hashed(i int) balancer.PickInfo {
	return balancer.PickInfo{Hash: uint64(i) * 0x9E3779B97F4A7C15, HasHash: true}
}

func TestTableShares(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []float64
	}{
		{"equal", []uint32{1, 1, 1}, []float64{1. / 3, 1. / 3, 1. / 3}},
		{"weighted 3:1", []uint32{3, 1}, []float64{.75, .25}},
		{"weighted 5:2:1", []uint32{5, 2, 1}, []float64{.625, .25, .125}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := bt.Endpoints(tt.weights...)
			p := Builder(0)(eps).(*picker)
			got := map[string]int{}
			for _, i := range p.table {
				got[eps[i].Address]++
			}
			want := map[string]float64{}
			for i, s := range tt.want {
				want[eps[i].Address] = s
			}
			bt.Within(t, got, want, len(p.table), 0.005)
		})
	}
}

func TestSameHashSameEndpoint(t *testing.T) {
	p := Builder(0)(bt.Endpoints(1, 1, 1))
	for i := range 100 {
		first, _ := p.Pick(hashed(i))
		if again, _ := p.Pick(hashed(i)); again.Endpoint != first.Endpoint {
			t.Fatalf("hash %d went to %s then %s", i, first.Endpoint.Address, again.Endpoint.Address)
		}
	}
}

func TestFewKeysMoveWhenAnEndpointLeaves(t *testing.T) {
	all := bt.Endpoints(1, 1, 1, 1, 1)
	before := Builder(0)(all)
	after := Builder(0)(append([]balancer.Endpoint(nil), all[:4]...))
	moved := 0
	const n = 20000
	for i := range n {
		a, _ := before.Pick(hashed(i))
		b, _ := after.Pick(hashed(i))
		if a.Endpoint.Address != all[4].Address && a.Endpoint.Address != b.Endpoint.Address {
			moved++
		}
	}
	// Maglev trades perfect stability for even tables; a few percent move.
	if float64(moved)/n > 0.05 {
		t.Errorf("%d of %d keys of remaining endpoints moved, want under 5 %%", moved, n)
	}
}

func TestSmallPrimeTable(t *testing.T) {
	for i, e := range buildTable(bt.Endpoints(1, 1), 7) {
		if e > 1 {
			t.Errorf("slot %d holds %d", i, e)
		}
	}
}

func TestLockFree(t *testing.T) {
	p := Builder(0)(bt.Endpoints(1, 2, 3))
	bt.NoLocks(t, p)
	bt.NoAllocs(t, p, hashed(7))
	bt.Concurrent(t, p, hashed)
}

func BenchmarkPickMaglev(b *testing.B) { bt.Benchmark(b, Builder(0), hashed(42)) }

func BenchmarkBuildMaglev(b *testing.B) {
	eps := bt.Endpoints(1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3)
	for b.Loop() {
		Builder(0)(eps)
	}
}
