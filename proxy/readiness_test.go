package proxy

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
	noLeafCheck := func(n leafNeeds) error {
		if n.own || len(n.linked) > 0 {
			t.Errorf("a configuration without TLS needs leaves %+v", n)
		}
		return nil
	}
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
				r.observe(s, needs, t0, noLeafCheck)
			}
			err := r.check(t0.Add(tt.at), notApplied, noLeafCheck)
			if got := errString(err); got != tt.want {
				t.Errorf("check = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("draining", func(t *testing.T) {
		var r readiness
		r.observe(applied("api"), needs, t0, noLeafCheck)
		r.draining.Store(true)
		if err := r.check(t0, notApplied, noLeafCheck); errString(err) != "draining: shutting down" {
			t.Errorf("check while draining = %v", err)
		}
	})
}

// TestReadinessWaitsForLeaf: a configuration presenting weft-leaf is not
// ready before the leaf is, even after the initial fetch timeout, nor
// before its trust bundle arrives (until that timeout).
func TestReadinessWaitsForLeaf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := xds.State{Listeners: xds.Resources{Received: true}, Clusters: xds.Resources{Received: true}}
	withRoots := s
	withRoots.Secrets = xds.Resources{Received: true, Items: map[string]proto.Message{"weft-roots": &tlsv3.Secret{Name: "weft-roots"}}}
	rt := &config.Runtime{UsesLeaf: true, Subscriptions: xds.Subscriptions{Secrets: []string{"weft-roots"}}}
	noLeaf := func(leafNeeds) error { return errors.New("no leaf") }
	hasLeaf := func(leafNeeds) error { return nil }
	notApplied := func() error { return errors.New("nothing applied") }

	var r readiness
	if r.observe(s, rt, t0, hasLeaf) {
		t.Fatal("ready without the trust bundle")
	}
	assertLatched(t, &r, false)
	if err := r.check(t0, notApplied, hasLeaf); errString(err) != `waiting for the first xDS secret "weft-roots"` {
		t.Errorf("check without the bundle = %v", err)
	}
	if r.observe(withRoots, rt, t0, noLeaf) {
		t.Fatal("ready without a leaf")
	}
	if err := r.check(t0.Add(initialFetchTimeout), notApplied, noLeaf); errString(err) != "no leaf" {
		t.Errorf("check without a leaf after the fetch timeout = %v", err)
	}
	if err := r.check(t0.Add(time.Second), notApplied, hasLeaf); err != nil {
		t.Errorf("check once the leaf arrived = %v", err)
	}
	if !r.ready.Load() {
		t.Error("readiness did not latch")
	}
	assertLatched(t, &r, true)
	if r.observe(withRoots, rt, t0, hasLeaf) {
		t.Error("observe reported becoming ready a second time")
	}
}

// TestReadinessWaitsForLinkedLeaves: a configuration presenting linked
// services' leaves is not ready before every one of them is, even after
// the initial fetch timeout, and says which one it waits for.
func TestReadinessWaitsForLinkedLeaves(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := xds.State{Listeners: xds.Resources{Received: true}, Clusters: xds.Resources{Received: true}}
	rt := &config.Runtime{LinkedLeaves: []string{"db", "ext"}}
	have := map[string]bool{"db": true}
	leaves := func(n leafNeeds) error {
		if n.own || !slices.Equal(n.linked, []string{"db", "ext"}) {
			t.Errorf("needs %+v, want the linked db and ext only", n)
		}
		for _, svc := range n.linked {
			if !have[svc] {
				return fmt.Errorf("waiting for %s", svc)
			}
		}
		return nil
	}
	notApplied := func() error { return errors.New("nothing applied") }
	var r readiness
	if r.observe(s, rt, t0, leaves) {
		t.Fatal("ready without the ext leaf")
	}
	if err := r.check(t0.Add(initialFetchTimeout), notApplied, leaves); errString(err) != "waiting for ext" {
		t.Errorf("check without the ext leaf, after the fetch timeout = %v", err)
	}
	have["ext"] = true
	if err := r.check(t0, notApplied, leaves); err != nil {
		t.Errorf("check once every leaf is there = %v", err)
	}
	assertLatched(t, &r, true)
}

// TestReadinessDoneOnObserve: the channel closes when an applied
// configuration is complete, once.
func TestReadinessDoneOnObserve(t *testing.T) {
	s := xds.State{Listeners: xds.Resources{Received: true}, Clusters: xds.Resources{Received: true}}
	var r readiness
	assertLatched(t, &r, false)
	none := func(leafNeeds) error { return nil }
	if !r.observe(s, &config.Runtime{}, time.Unix(1000, 0), none) {
		t.Fatal("a complete configuration did not make the proxy ready")
	}
	assertLatched(t, &r, true)
	if r.observe(s, &config.Runtime{}, time.Unix(1001, 0), none) {
		t.Error("observe reported becoming ready a second time")
	}
}

func assertLatched(t *testing.T, r *readiness, want bool) {
	t.Helper()
	select {
	case <-r.done():
		if !want {
			t.Error("done() closed before the proxy was ready")
		}
	default:
		if want {
			t.Error("done() not closed once the proxy was ready")
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
