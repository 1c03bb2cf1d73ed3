// Package balancertest holds the checks every load-balancing policy's
// tests run: distributions, lock-freedom and allocation-free picks.
package balancertest

import (
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weft-mesh/weft/proxy/balancer"
)

// Endpoints returns endpoints "e0", "e1", … with the given weights and
// their own in-flight counters.
func Endpoints(weights ...uint32) []balancer.Endpoint {
	out := make([]balancer.Endpoint, len(weights))
	for i, w := range weights {
		out[i] = balancer.Endpoint{Address: "10.0.0." + strconv.Itoa(i) + ":8080", Weight: w, Active: new(atomic.Int64)}
	}
	return out
}

// Count picks n times with info(i) and counts picks per address.
func Count(t testing.TB, p balancer.Picker, n int, info func(i int) balancer.PickInfo) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for i := range n {
		res, err := p.Pick(info(i))
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		got[res.Endpoint.Address]++
	}
	return got
}

// NoHash is a PickInfo source without a request hash.
func NoHash(int) balancer.PickInfo { return balancer.PickInfo{} }

// Within fails unless got is within tolerance (a fraction of n) of
// want×n for every endpoint; want are the expected shares by address.
func Within(t testing.TB, got map[string]int, want map[string]float64, n int, tolerance float64) {
	t.Helper()
	for addr, share := range want {
		if d := float64(got[addr])/float64(n) - share; d > tolerance || d < -tolerance {
			t.Errorf("%s got %d of %d picks (%.3f), want %.3f ± %.3f; all: %v", addr, got[addr], n, float64(got[addr])/float64(n), share, tolerance, got)
		}
	}
}

// Concurrent picks from many goroutines at once; run under -race it
// proves Pick shares no unsynchronized state.
func Concurrent(t *testing.T, p balancer.Picker, info func(i int) balancer.PickInfo) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				res, err := p.Pick(info(g*2000 + i))
				if err != nil {
					t.Errorf("Pick: %v", err)
					return
				}
				if res.Endpoint.Active != nil {
					res.Endpoint.Active.Add(1)
					res.Endpoint.Active.Add(-1)
				}
			}
		})
	}
	wg.Wait()
}

// NoAllocs fails if Pick allocates.
func NoAllocs(t *testing.T, p balancer.Picker, info balancer.PickInfo) {
	t.Helper()
	if n := testing.AllocsPerRun(100, func() { p.Pick(info) }); n != 0 {
		t.Errorf("Pick allocates %.1f times per call, want 0", n)
	}
}

var lockTypes = []reflect.Type{reflect.TypeFor[sync.Mutex](), reflect.TypeFor[sync.RWMutex](), reflect.TypeFor[sync.Cond]()}

// NoLocks fails if the picker's type holds a mutex anywhere in its
// struct: Pick must be lock-free.
func NoLocks(t *testing.T, p balancer.Picker) {
	t.Helper()
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		for _, l := range lockTypes {
			if ty == l {
				t.Errorf("picker holds a %s at %s; Pick must not lock", ty, path)
				return
			}
		}
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(ty.Elem(), path+"[]")
		case reflect.Struct:
			for i := range ty.NumField() {
				walk(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
		}
	}
	walk(reflect.TypeOf(p), reflect.TypeOf(p).String())
}

// Benchmark measures Pick over 16 endpoints from parallel goroutines.
func Benchmark(b *testing.B, build balancer.Builder, info balancer.PickInfo) {
	p := build(Endpoints(1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Pick(info)
		}
	})
}
