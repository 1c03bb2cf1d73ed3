package main

import (
	"slices"
	"testing"
)

func TestIdleTrimmerReleasesOncePerIdlePeriodAndEveryMinuteOfTraffic(t *testing.T) {
	tests := []struct {
		name     string
		activity []uint64 // the counter at each tick
		want     []bool   // the releases: busy or idle
	}{
		{"idle since the release at ready", []uint64{5, 5, 5, 5}, nil},
		{"traffic, then idle", []uint64{6, 9, 9, 9}, []bool{false}},
		{"busy for three ticks", []uint64{6, 7, 8, 8}, []bool{false}},
		{"busy for four ticks, then for four more", []uint64{6, 7, 8, 9, 10, 11, 12, 13}, []bool{true, true}},
		{"an idle release starts the busy count again", []uint64{6, 7, 8, 8, 9, 10, 11, 12}, []bool{false, true}},
		{"two idle periods", []uint64{6, 6, 6, 7, 7, 7}, []bool{false, false}},
		{"idle for one tick between bursts", []uint64{6, 6, 8, 8}, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := 0
			var released []bool
			tr := idleTrimmer{
				activity:  func() uint64 { v := tt.activity[i]; i++; return v },
				release:   func(busy bool) { released = append(released, busy) },
				busyEvery: 4,
				last:      5,
				trimmed:   true, // released when the proxy became ready
			}
			for range tt.activity {
				tr.tick()
			}
			if !slices.Equal(released, tt.want) {
				t.Errorf("releases (busy?) %v, want %v", released, tt.want)
			}
		})
	}
}
