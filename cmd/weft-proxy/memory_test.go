package main

import (
	"context"
	"slices"
	"testing"
	"time"
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

func TestIdleTrimmerReleasesUnderTrafficOnlyWhatGrew(t *testing.T) {
	busy := []uint64{6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17} // three busy periods
	tests := []struct {
		name  string
		grown []bool // grown's answer at each busy period's end
		want  []bool
	}{
		{"settled working set", []bool{false, false, false}, nil},
		{"grew once", []bool{false, true, false}, []bool{true}},
		{"grew every time", []bool{true, true, true}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, checks := 0, 0
			var released []bool
			tr := idleTrimmer{
				activity:  func() uint64 { v := busy[i]; i++; return v },
				release:   func(busy bool) { released = append(released, busy) },
				grown:     func() bool { g := tt.grown[checks]; checks++; return g },
				busyEvery: 4,
				last:      5,
				trimmed:   true,
			}
			for range busy {
				tr.tick()
			}
			if checks != len(tt.grown) {
				t.Errorf("grown asked %d times, want once per busy period (%d)", checks, len(tt.grown))
			}
			if !slices.Equal(released, tt.want) {
				t.Errorf("releases (busy?) %v, want %v", released, tt.want)
			}
		})
	}
}

func TestResidentWatchSettlesAfterEachRelease(t *testing.T) {
	var file int64
	w := residentWatch{resident: func() (int64, int64, error) { return 0, file, nil }}
	steps := []struct {
		file    int64
		release bool // released() before this check
		want    bool
	}{
		{file: 12 << 20, want: false},                // settles at 12 MiB
		{file: 12<<20 + 512<<10, want: false},        // within busyGrowth
		{file: 14 << 20, want: true},                 // a one-off event mapped 2 MiB in
		{file: 3 << 20, release: true, want: false},  // settles again after the release
		{file: 3<<20 + busyGrowth + 1, want: true},   // grew past it
		{file: 20 << 20, release: true, want: false}, // each release resettles
		{file: 20<<20 + busyGrowth, want: false},     // exactly busyGrowth is not growth
	}
	for i, s := range steps {
		if s.release {
			w.released()
		}
		file = s.file
		if got := w.grown(); got != s.want {
			t.Errorf("step %d (file %d): grown %v, want %v", i, s.file, got, s.want)
		}
	}
}

func TestWaitQuiet(t *testing.T) {
	const interval = 5 * time.Millisecond
	tests := []struct {
		name   string
		counts func(i int) uint64 // the activity count at the i-th read
		most   time.Duration
		cancel bool
		want   bool
	}{
		{name: "quiet at once", counts: func(int) uint64 { return 7 }, most: time.Hour, want: true},
		{name: "quiet after traffic", counts: func(i int) uint64 { return uint64(min(i, 3)) }, most: time.Hour, want: true},
		{name: "never quiet: the bound ends it", counts: func(i int) uint64 { return uint64(i) }, most: 30 * time.Millisecond, want: true},
		{name: "shutdown first", counts: func(i int) uint64 { return uint64(i) }, most: time.Hour, cancel: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reads := 0
			activity := func() uint64 {
				reads++
				if tt.cancel && reads == 3 {
					cancel()
				}
				return tt.counts(reads)
			}
			if got := waitQuiet(ctx, activity, interval, tt.most); got != tt.want {
				t.Errorf("waitQuiet = %v, want %v", got, tt.want)
			}
		})
	}
}
