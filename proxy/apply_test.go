package proxy

import (
	"log/slog"
	"maps"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/xds"
)

// newUnstartedProxy returns a proxy that is not running: apply can be
// called directly. Its listeners and clusters close with the test.
func newUnstartedProxy(tb testing.TB) *Proxy {
	tb.Helper()
	p, err := New(Options{ProxyID: "web-sidecar-proxy", XDSAddrs: []string{"127.0.0.1:1"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.listeners.Close()
		p.clusters.Close()
	})
	return p
}

// TestApplyRecompilesWhatChanged: after an endpoint flip the applied
// runtime holds the same listeners and clusters but the flipped one, which
// the cluster manager installed; after a route change, the same clusters
// and listeners but the one of that route configuration.
func TestApplyRecompilesWhatChanged(t *testing.T) {
	p := newUnstartedProxy(t)
	side := xdstest.ScaledSidecar(xdstest.Scale{Clusters: 5, EndpointsPerCluster: 2, Listeners: 3, RegexRoutesPerListener: 2})
	s := scaledState(side)
	apply := func(s xds.State) *config.Runtime {
		t.Helper()
		if _, err := p.apply(s); err != nil {
			t.Fatal(err)
		}
		return p.runtime.Load()
	}
	first := apply(s)

	s.Endpoints.Items = maps.Clone(s.Endpoints.Items)
	s.Endpoints.Items["svc-2"] = xdstest.FlipHealth(side.Loads[2], 1)
	flipped := apply(s)
	wantReused(t, "after svc-2's endpoint flip", first, flipped, "", "svc-2")
	for _, c := range p.clusters.Info() {
		if c.Name == "svc-2" && c.Hosts[1].Healthy {
			t.Errorf("svc-2 hosts %+v: want the second unhealthy", c.Hosts)
		}
	}

	rc := proto.Clone(side.Routes[1]).(*routev3.RouteConfiguration)
	rc.VirtualHosts[0].Domains = []string{"api.example"}
	s.Routes.Items = maps.Clone(s.Routes.Items)
	s.Routes.Items[rc.GetName()] = rc
	wantReused(t, "after routes-1 changed", flipped, apply(s), "listener-1", "")
}

// wantReused fails unless next holds the listeners and clusters of prev
// but for those named newListener and newCluster.
func wantReused(t *testing.T, when string, prev, next *config.Runtime, newListener, newCluster string) {
	t.Helper()
	for i, l := range next.Listeners {
		if reused := l == prev.Listeners[i]; reused == (l.Name == newListener) {
			t.Errorf("%s: listener %s reused: %v", when, l.Name, reused)
		}
	}
	for name, c := range next.Clusters {
		if reused := c == prev.Clusters[name]; reused == (name == newCluster) {
			t.Errorf("%s: cluster %s reused: %v", when, name, reused)
		}
	}
}

// TestActivityCountsAppliedConfigurations: an applied configuration is
// activity, as a request is, so that an idle sidecar releases the pages
// applying it mapped in (cmd/weft-proxy's idle trimmer); a rejected one
// changes nothing, so it is not.
func TestActivityCountsAppliedConfigurations(t *testing.T) {
	p := newUnstartedProxy(t)
	side := xdstest.ScaledSidecar(xdstest.Scale{Clusters: 2, EndpointsPerCluster: 2, Listeners: 1, RegexRoutesPerListener: 1})
	s := scaledState(side)
	before := p.Activity()
	if _, err := p.apply(s); err != nil {
		t.Fatal(err)
	}
	applied := p.Activity()
	if applied == before {
		t.Fatalf("Activity %d after an applied configuration: want it changed", applied)
	}

	bad := proto.Clone(side.Routes[0]).(*routev3.RouteConfiguration)
	bad.VirtualHosts[0].Routes[0].GetMatch().PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "("}}
	s.Routes.Items = maps.Clone(s.Routes.Items)
	s.Routes.Items[bad.GetName()] = bad
	if _, err := p.apply(s); err == nil {
		t.Fatal("apply of a route with regex \"(\": want an error")
	}
	if got := p.Activity(); got != applied {
		t.Errorf("Activity %d after a rejected configuration: want %d, unchanged", got, applied)
	}
}
