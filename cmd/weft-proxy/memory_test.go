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
