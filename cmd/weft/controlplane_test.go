package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/weft-mesh/weft/discovery"
)

// TestDiscoveryConfigFromFlags: the resync and removal-guard flags reach
// the watcher's configuration, 0 turns a protection off, and bad values
// are refused naming the flag.
func TestDiscoveryConfigFromFlags(t *testing.T) {
	tests := []struct {
		name    string
		flags   controlPlaneFlags
		want    discovery.Config
		wantErr string
	}{
		{"defaults", controlPlaneFlags{resyncGrace: time.Minute, removalShare: 50, removalGrace: 30 * time.Second},
			discovery.Config{ResyncGrace: time.Minute, RemovalShare: 50, RemovalGrace: 30 * time.Second}, ""},
		{"guard and resync off", controlPlaneFlags{removalShare: 50},
			discovery.Config{ResyncGrace: -1, RemovalShare: 50, RemovalGrace: -1}, ""},
		{"share 0", controlPlaneFlags{removalShare: 0, removalGrace: time.Second}, discovery.Config{},
			"--consul-removal-share 0: want a percentage above 0 and below 100"},
		{"share 100", controlPlaneFlags{removalShare: 100, removalGrace: time.Second}, discovery.Config{},
			"--consul-removal-share 100: want a percentage above 0 and below 100"},
		{"negative grace", controlPlaneFlags{removalShare: 50, removalGrace: -time.Second}, discovery.Config{},
			"--consul-removal-grace -1s: must not be negative (0 turns the guard off)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := discoveryConfig(&tt.flags)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(discovery.Config{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}
