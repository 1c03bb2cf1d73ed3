package controlplane

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// TestGoControlPlaneSnapshotsOnlyForTheirClients publishes a catalog in
// which one instance of svc-1, an upstream of svc-0's sidecars, flips
// health, and checks that go-control-plane's snapshot of a sidecar is
// built and set in its caches only once they have a watch of it: a SotW
// watch opened after several publishes is answered with the latest
// version, and one left open is answered by the next publish; the config
// dump's GetSnapshot sees the latest version either way.
func TestGoControlPlaneSnapshotsOnlyForTheirClients(t *testing.T) {
	const node = "svc-0-0-sidecar-proxy"
	ctx := context.Background()
	healthy := largeCatalog(10)
	critical := withHealth(healthy, "svc-1", catalog.HealthCritical)
	cache := newNodeCache(nil)
	p := newTestPublisher(cache)
	x := translate.NewTranslator()
	publish := func(s *catalog.Snapshot) *lazySnapshot {
		t.Helper()
		if _, err := p.publish(ctx, x.Translate(s, benchMesh), time.Now()); err != nil {
			t.Fatal(err)
		}
		return p.published[node].snap
	}
	wantDumped := func(when string, want *lazySnapshot) {
		t.Helper()
		got, err := cache.GetSnapshot(node)
		if err != nil {
			t.Fatalf("%s: GetSnapshot: %v", when, err)
		}
		for i, typ := range publishedTypes {
			if v := got.GetVersion(typ); v != want.versions[i] {
				t.Errorf("%s: GetSnapshot's %s version %q, want the published %q", when, typ, v, want.versions[i])
			}
		}
	}

	first := publish(healthy)
	second := publish(critical)
	if first.versions[2] == second.versions[2] {
		t.Fatalf("svc-1's health flip left %s's load assignments at version %q", node, first.versions[2])
	}
	for _, s := range []*lazySnapshot{first, second} {
		if s.built != nil {
			t.Error("go-control-plane's snapshot was built for a node its caches have no watch of")
		}
	}
	if _, err := cache.sidecars.GetSnapshot(node); err == nil {
		t.Error("go-control-plane's cache holds a snapshot of a node it has no watch of")
	}
	wantDumped("before any SotW watch", second)

	names := make([]string, len(second.items[2]))
	held := map[string]string{}
	for i, r := range second.items[2] {
		names[i] = cachev3.GetResourceName(r)
		held[names[i]] = second.keys[2][i].hash
	}
	// watch opens a watch of the node's load assignments, from a client
	// that holds none, or second's at version.
	watch := func(version string) <-chan cachev3.Response {
		t.Helper()
		sub := stream.NewSotwSubscription(names, true)
		ch := make(chan cachev3.Response, 1)
		req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resourcev3.EndpointType, ResourceNames: names, VersionInfo: version}
		if version != "" {
			req.ResponseNonce = "1"
			sub.SetReturnedResources(held)
		}
		cancel, err := cache.CreateWatch(req, &sub, ch)
		if err != nil {
			t.Fatal(err)
		}
		if cancel != nil {
			t.Cleanup(cancel)
		}
		return ch
	}
	wantAnswer := func(when string, ch <-chan cachev3.Response, version string) {
		t.Helper()
		select {
		case r := <-ch:
			if got, _ := r.GetVersion(); got != version {
				t.Errorf("%s: answered version %q, want %q", when, got, version)
			}
		default:
			t.Errorf("%s: not answered, want version %q", when, version)
		}
	}
	wantAnswer("a SotW watch opened after two publishes", watch(""), second.versions[2])

	open := watch(second.versions[2])
	select {
	case r := <-open:
		v, _ := r.GetVersion()
		t.Fatalf("a watch of the current version was answered with %q", v)
	default:
	}
	third := publish(healthy)
	wantAnswer("an open SotW watch, after the next publish", open, third.versions[2])
	wantDumped("after the SotW watches", third)
}

// withHealth is s with the first instance of service in state h.
func withHealth(s *catalog.Snapshot, service string, h catalog.Health) *catalog.Snapshot {
	next := *s
	next.Version++
	next.Endpoints = maps.Clone(s.Endpoints)
	eps := slices.Clone(s.Endpoints[service])
	eps[0].Health = h
	next.Endpoints[service] = eps
	return &next
}
