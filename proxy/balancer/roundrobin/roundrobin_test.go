package roundrobin

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/proxy/balancer"
	bt "github.com/weft-mesh/weft/proxy/balancer/balancertest"
)

func eps(weights ...uint32) []balancer.Endpoint {
	out := make([]balancer.Endpoint, len(weights))
	for i, w := range weights {
		out[i] = balancer.Endpoint{Address: string(rune('a' + i)), Weight: w}
	}
	return out
}

func countPicks(t *testing.T, p balancer.Picker, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		res, err := p.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		got[res.Endpoint.Address]++
	}
	return got
}

func TestDistribution(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []balancer.Endpoint
		picks     int
		want      map[string]int
	}{
		{"one endpoint", eps(1), 10, map[string]int{"a": 10}},
		{"equal weights", eps(1, 1, 1), 300, map[string]int{"a": 100, "b": 100, "c": 100}},
		{"zero weight counts as one", eps(0, 1), 100, map[string]int{"a": 50, "b": 50}},
		{"weights 3:1", eps(3, 1), 400, map[string]int{"a": 300, "b": 100}},
		{"weights reduced by gcd", eps(200, 100), 300, map[string]int{"a": 200, "b": 100}},
		{"weights 5:2:1", eps(5, 2, 1), 800, map[string]int{"a": 500, "b": 200, "c": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := countPicks(t, New(tt.endpoints), tt.picks)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("picks per endpoint (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScheduleIsSmooth(t *testing.T) {
	// Smooth weighted round robin never sends a 5:1:1 cluster's heavy
	// endpoint more than 3 requests in a row (a naive expansion sends 5).
	s := schedule(eps(5, 1, 1))
	if diff := cmp.Diff([]uint32{0, 0, 1, 0, 2, 0, 0}, s); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
}

func TestLargeWeightsAreBounded(t *testing.T) {
	s := schedule(eps(1_000_000, 999_999, 1))
	if len(s) > maxSchedule+3 {
		t.Fatalf("schedule length %d, want <= %d", len(s), maxSchedule+3)
	}
	got := make(map[uint32]int)
	for _, i := range s {
		got[i]++
	}
	if got[2] != 1 || got[0] < maxSchedule/2-2 || got[1] < maxSchedule/2-2 {
		t.Errorf("slots per endpoint = %v, want about half each and one for the tiny one", got)
	}
}

func TestEmptyHasNoEndpoint(t *testing.T) {
	_, err := New(nil).Pick(balancer.PickInfo{})
	if !errors.Is(err, balancer.ErrNoEndpoint) {
		t.Fatalf("Pick on empty picker: err = %v, want ErrNoEndpoint", err)
	}
}

func TestConcurrentPicks(t *testing.T) {
	p := New(eps(1, 1))
	var mu sync.Mutex
	total := make(map[string]int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got := make(map[string]int)
			for range 1000 {
				res, _ := p.Pick(balancer.PickInfo{})
				got[res.Endpoint.Address]++
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range got {
				total[k] += v
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff(map[string]int{"a": 4000, "b": 4000}, total); diff != "" {
		t.Errorf("concurrent picks (-want +got):\n%s", diff)
	}
}

func BenchmarkPick(b *testing.B) {
	p := New(eps(3, 2, 1))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Pick(balancer.PickInfo{})
		}
	})
}

func TestLockFree(t *testing.T) {
	p := New(bt.Endpoints(1, 2, 3))
	bt.NoLocks(t, p)
	bt.NoAllocs(t, p, balancer.PickInfo{})
	bt.Concurrent(t, p, bt.NoHash)
}

func BenchmarkPickRoundRobin(b *testing.B) { bt.Benchmark(b, New, balancer.PickInfo{}) }
