package proxy

import (
	"errors"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/xds"
)

func TestReadiness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	applied := func(endpoints ...string) xds.State {
		s := xds.State{Listeners: xds.Resources{Received: true}, Clusters: xds.Resources{Received: true}}
		s.Endpoints.Items = map[string]proto.Message{}
		for _, n := range endpoints {
			s.Endpoints.Items[n] = &endpointv3.ClusterLoadAssignment{ClusterName: n}
		}
		return s
	}
	needs := &config.Runtime{Subscriptions: xds.Subscriptions{Endpoints: []string{"api"}}}
	notApplied := func() error { return errors.New("nothing applied") }
	tests := []struct {
		name    string
		observe []xds.State
		at      time.Duration
		want    string // "" means ready
	}{
		{"nothing applied", nil, 0, "nothing applied"},
		{"only listeners", []xds.State{{Listeners: xds.Resources{Received: true}}}, 0, "nothing applied"},
		{"endpoints pending", []xds.State{applied()}, time.Second, `waiting for the first xDS cluster load assignment "api"`},
		{"endpoints arrived", []xds.State{applied(), applied("api")}, 0, ""},
		{"initial fetch timeout", []xds.State{applied()}, initialFetchTimeout, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r readiness
			for _, s := range tt.observe {
				r.observe(s, needs, t0)
			}
			err := r.check(t0.Add(tt.at), notApplied)
			if got := errString(err); got != tt.want {
				t.Errorf("check = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("draining", func(t *testing.T) {
		var r readiness
		r.observe(applied("api"), needs, t0)
		r.draining.Store(true)
		if err := r.check(t0, notApplied); errString(err) != "draining: shutting down" {
			t.Errorf("check while draining = %v", err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
