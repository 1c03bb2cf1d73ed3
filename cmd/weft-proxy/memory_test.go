package main

import "testing"

func TestIdleTrimmerReleasesOncePerIdlePeriod(t *testing.T) {
	tests := []struct {
		name     string
		activity []uint64 // the counter at each tick
		want     int      // releases
	}{
		{"idle since the release at ready", []uint64{5, 5, 5, 5}, 0},
		{"traffic, then idle", []uint64{6, 9, 9, 9}, 1},
		{"always busy", []uint64{6, 7, 8, 9}, 0},
		{"two idle periods", []uint64{6, 6, 6, 7, 7, 7}, 2},
		{"idle for one tick between bursts", []uint64{6, 6, 8, 8}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, released := 0, 0
			tr := idleTrimmer{
				activity: func() uint64 { v := tt.activity[i]; i++; return v },
				release:  func() { released++ },
				last:     5,
				trimmed:  true, // released when the proxy became ready
			}
			for range tt.activity {
				tr.tick()
			}
			if released != tt.want {
				t.Errorf("released %d times, want %d", released, tt.want)
			}
		})
	}
}
