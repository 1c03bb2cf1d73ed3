package ringhash

import (
	"testing"

	"github.com/weft-mesh/weft/proxy/balancer"
	bt "github.com/weft-mesh/weft/proxy/balancer/balancertest"
)

func hashed(i int) balancer.PickInfo {
	return balancer.PickInfo{Hash: uint64(i) * 0x9E3779B97F4A7C15, HasHash: true}
}

func TestSameHashSameEndpoint(t *testing.T) {
	p := Builder(0, 0)(bt.Endpoints(1, 1, 1))
	for i := range 100 {
		first, _ := p.Pick(hashed(i))
		for range 10 {
			if again, _ := p.Pick(hashed(i)); again.Endpoint != first.Endpoint {
				t.Fatalf("hash %d went to %s then %s", i, first.Endpoint.Address, again.Endpoint.Address)
			}
		}
	}
}

func TestDistribution(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []float64
	}{
		{"equal", []uint32{1, 1, 1, 1}, []float64{.25, .25, .25, .25}},
		{"weighted 3:1", []uint32{3, 1}, []float64{.75, .25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := bt.Endpoints(tt.weights...)
			want := map[string]float64{}
			for i, s := range tt.want {
				want[eps[i].Address] = s
			}
			const n = 40000
			bt.Within(t, bt.Count(t, Builder(0, 0)(eps), n, hashed), want, n, 0.05)
		})
	}
}

func TestRingSize(t *testing.T) {
	tests := []struct {
		name     string
		weights  []uint32
		min, max uint64
		want     int
	}{
		{"min size, equal weights", []uint32{1, 1, 1}, 1024, 0, 1026},
		{"fractions rounded up for the lightest", []uint32{1, 2}, 1000, 0, 1002},
		{"weights 1:3", []uint32{1, 3}, 1024, 0, 1024},
		{"capped by max", []uint32{1, 1000}, 1024, 1500, 1500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(Builder(tt.min, tt.max)(bt.Endpoints(tt.weights...)).(*picker).ring); got != tt.want {
				t.Errorf("ring size = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestRemovingAnEndpointMovesFewKeys: the ring is rescaled when the
// endpoint set changes (as Envoy's), so a few keys of the remaining
// endpoints move; modulo hashing would move three quarters of them.
func TestRemovingAnEndpointMovesFewKeys(t *testing.T) {
	all := bt.Endpoints(1, 1, 1, 1)
	before := Builder(0, 0)(all)
	after := Builder(0, 0)(append([]balancer.Endpoint(nil), all[:3]...))
	moved := 0
	for i := range 10000 {
		a, _ := before.Pick(hashed(i))
		b, _ := after.Pick(hashed(i))
		if a.Endpoint.Address != all[3].Address && a.Endpoint.Address != b.Endpoint.Address {
			moved++
		}
	}
	if moved > 1500 {
		t.Errorf("%d of 10000 keys of remaining endpoints moved, want under 15 %%", moved)
	}
}

func TestRetryMovesTheHash(t *testing.T) {
	p := Builder(0, 0)(bt.Endpoints(1, 1, 1, 1))
	differ := 0
	for i := range 1000 {
		first, _ := p.Pick(hashed(i))
		info := hashed(i)
		info.Attempt = 1
		if retry, _ := p.Pick(info); retry.Endpoint != first.Endpoint {
			differ++
		}
	}
	if differ < 600 {
		t.Errorf("retries went elsewhere %d of 1000 times, want about 750", differ)
	}
}

func TestNoHashIsRandom(t *testing.T) {
	eps := bt.Endpoints(1, 1)
	bt.Within(t, bt.Count(t, Builder(0, 0)(eps), 10000, bt.NoHash), map[string]float64{eps[0].Address: .5}, 10000, 0.03)
}

func TestLockFree(t *testing.T) {
	p := Builder(0, 0)(bt.Endpoints(1, 2, 3))
	bt.NoLocks(t, p)
	bt.NoAllocs(t, p, hashed(7))
	bt.Concurrent(t, p, hashed)
}

func BenchmarkPickRingHash(b *testing.B) { bt.Benchmark(b, Builder(0, 0), hashed(42)) }

func BenchmarkBuildRingHash(b *testing.B) {
	eps := bt.Endpoints(1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3)
	for b.Loop() {
		Builder(0, 0)(eps)
	}
}
