package random

import (
	"testing"

	"github.com/weft-mesh/weft/proxy/balancer"
	bt "github.com/weft-mesh/weft/proxy/balancer/balancertest"
)

func TestDistribution(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []float64
	}{
		{"equal", []uint32{1, 1, 1, 1}, []float64{.25, .25, .25, .25}},
		{"weighted 3:1", []uint32{3, 1}, []float64{.75, .25}},
		{"weighted 90:10", []uint32{90, 10}, []float64{.9, .1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := bt.Endpoints(tt.weights...)
			want := map[string]float64{}
			for i, s := range tt.want {
				want[eps[i].Address] = s
			}
			const n = 40000
			bt.Within(t, bt.Count(t, New(eps), n, bt.NoHash), want, n, 0.02)
		})
	}
}

func TestEmpty(t *testing.T) {
	if _, err := New(nil).Pick(balancer.PickInfo{}); err != balancer.ErrNoEndpoint {
		t.Errorf("Pick on no endpoints: %v, want ErrNoEndpoint", err)
	}
}

func TestLockFree(t *testing.T) {
	p := New(bt.Endpoints(1, 2, 3))
	bt.NoLocks(t, p)
	bt.NoAllocs(t, p, balancer.PickInfo{})
	bt.Concurrent(t, p, bt.NoHash)
}

func BenchmarkPickRandom(b *testing.B) { bt.Benchmark(b, New, balancer.PickInfo{}) }
