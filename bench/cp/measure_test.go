package main

import (
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted: 100 … 1
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four, nearest rank", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p99 of 40 is the slowest", ms(hundred[:40]...), 99, 100 * time.Millisecond},
		{"max", ms(5, 9, 1), 100, 9 * time.Millisecond},
		{"p0 is the least", ms(5, 9, 1), 0, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]time.Duration(nil), tc.ds...)
			if got := percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.ds, tc.p, got, tc.want)
			}
			for i := range before {
				if tc.ds[i] != before[i] {
					t.Fatalf("percentile reordered its input")
				}
			}
		})
	}
}

func TestConverged(t *testing.T) {
	eds, sds, lds := resourcev3.EndpointType, resourcev3.SecretType, resourcev3.ListenerType
	acks := []lgACK{{At: 10, Type: lds}, {At: 20, Type: sds}, {At: 30, Type: eds}, {At: 40, Type: sds}}
	for _, tc := range []struct {
		name     string
		acks     []lgACK
		types    []string
		need     int
		wantLast int64
		wantOK   bool
	}{
		{name: "no ACK", types: nil, wantOK: false},
		{name: "any type: the last ACK", acks: acks, wantLast: 40, wantOK: true},
		{name: "only the change's type counts", acks: acks, types: []string{eds}, wantLast: 30, wantOK: true},
		{name: "two secret pushes: the second", acks: acks, types: []string{sds}, need: 2, wantLast: 40, wantOK: true},
		{name: "three secret pushes wanted, two came", acks: acks, types: []string{sds}, need: 3, wantLast: 40, wantOK: false},
		{name: "other types only", acks: acks[:1], types: []string{eds}, wantOK: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last, ok := converged(tc.acks, tc.types, tc.need)
			if ok != tc.wantOK || ok && last != tc.wantLast {
				t.Errorf("converged = %d, %v; want %d, %v", last, ok, tc.wantLast, tc.wantOK)
			}
		})
	}
}

func TestAcksAfter(t *testing.T) {
	acks := []lgACK{{At: 100}, {At: 200}, {At: 300}}
	if got := acksAfter(acks, time.Unix(0, 200)); len(got) != 1 || got[0].At != 300 {
		t.Errorf("acksAfter(200) = %v, want the ACK at 300 only (strictly after)", got)
	}
	if got := acksAfter(acks, time.Unix(0, 50)); len(got) != 3 {
		t.Errorf("acksAfter(50) = %v, want all three", got)
	}
}

func TestSpreadOf(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		name string
		ds   []time.Duration
		want spread
	}{
		{"none", nil, spread{}},
		{"one", ms(7), spread{First: 7, P10: 7, P50: 7, P90: 7, Last: 7}},
		{"ten, unsorted", ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), spread{First: 1, P10: 1, P50: 5, P90: 9, Last: 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := spreadOf(tc.ds); got != tc.want {
				t.Errorf("spreadOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
