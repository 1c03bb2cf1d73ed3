package controlplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// largeCatalog is a mesh of n services × 2 instances, each sidecar with two
// upstreams, half of the services speaking HTTP.
func largeCatalog(n int) *catalog.Snapshot {
	s := &catalog.Snapshot{
		Datacenter:      "dc1",
		Proxies:         map[string]*catalog.Proxy{},
		Endpoints:       map[string][]catalog.Endpoint{},
		ServiceDefaults: map[string]*catalog.ServiceDefaults{},
	}
	for i := range n {
		svc := fmt.Sprintf("svc-%d", i)
		if i%2 == 0 {
			s.ServiceDefaults[svc] = &catalog.ServiceDefaults{Name: svc, Protocol: "http"}
		}
		for j := range 2 {
			id := fmt.Sprintf("%s-%d-sidecar-proxy", svc, j)
			port := 20000 + (i*2+j)%40000
			s.Proxies[id] = &catalog.Proxy{
				ID: id, Name: svc + "-sidecar-proxy", Address: "10.0.0.1", Port: port,
				DestinationName: svc, LocalAddress: "127.0.0.1", LocalPort: 8080,
				Upstreams: []catalog.Upstream{
					{DestinationName: fmt.Sprintf("svc-%d", (i+1)%n), LocalBindAddress: "127.0.0.1", LocalBindPort: 9001},
					{DestinationName: fmt.Sprintf("svc-%d", (i+2)%n), LocalBindAddress: "127.0.0.1", LocalBindPort: 9002},
				},
			}
			s.Endpoints[svc] = append(s.Endpoints[svc], catalog.Endpoint{
				ProxyID: id, Address: "10.0.0.1", Port: port, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1,
			})
		}
	}
	return s
}

// BenchmarkTranslate1000Services measures translating a 1,000-service,
// 2,000-sidecar catalog.
func BenchmarkTranslate1000Services(b *testing.B) {
	snap := largeCatalog(1000)
	b.ReportAllocs()
	for b.Loop() {
		translate.Translate(snap, benchMesh)
	}
}

// BenchmarkPublish1000Services measures translating the whole catalog from
// scratch, validating, hashing and caching the snapshots of 2,000 sidecars
// after one endpoint changed: what every change cost before Translator.
func BenchmarkPublish1000Services(b *testing.B) {
	snap := largeCatalog(1000)
	cache := newNodeCache(nil)
	p := newPublisher(cache, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry()))
	ctx := context.Background()
	if _, err := p.publish(ctx, translate.Translate(snap, benchMesh), time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		// One instance moved: a new snapshot, as discovery would publish.
		eps := append([]catalog.Endpoint(nil), snap.Endpoints["svc-0"]...)
		eps[0].Port = 30000 + i%1000
		snap.Endpoints["svc-0"] = eps
		if _, err := p.publish(ctx, translate.Translate(snap, benchMesh), time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOneServiceChange1000Services measures what the publish loop
// does when one instance of one service in a 1,000-service, 2,000-sidecar
// catalog changes: translate with the long-lived Translator (only the
// sidecars with that service as an upstream again), then validate, hash
// and cache their snapshots. Iterations alternate between two snapshots
// that differ in that instance's health, as discovery would publish them.
func BenchmarkOneServiceChange1000Services(b *testing.B) {
	healthy := largeCatalog(1000)
	critical := *healthy
	critical.Endpoints = maps.Clone(healthy.Endpoints)
	eps := slices.Clone(healthy.Endpoints["svc-0"])
	eps[0].Health = catalog.HealthCritical
	critical.Endpoints["svc-0"] = eps
	snaps := []*catalog.Snapshot{healthy, &critical}

	cache := newNodeCache(nil)
	p := newPublisher(cache, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry()))
	x := translate.NewTranslator()
	ctx := context.Background()
	if _, err := p.publish(ctx, x.Translate(healthy, benchMesh), time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		changed, err := p.publish(ctx, x.Translate(snaps[i%2], benchMesh), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if changed != 4 { // the sidecars of svc-998 and svc-999
			b.Fatalf("%d sidecars changed, want 4", changed)
		}
	}
}

var benchMesh = translate.Mesh{TrustDomain: "weft.local", RootsPEM: []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")}

// BenchmarkFanOutPublish2000Sidecars measures the publisher alone when a
// service every sidecar of a 1,000-service, 2,000-sidecar catalog has as
// an upstream changes (an instance's health flips): every sidecar's load
// assignments change and are published again. The two translations are
// made once; iterations publish them in turn.
func BenchmarkFanOutPublish2000Sidecars(b *testing.B) {
	healthy := largeCatalog(1000)
	hub := []catalog.Endpoint{
		{ProxyID: "hub-0-sidecar-proxy", Address: "10.0.1.1", Port: 21000, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1},
		{ProxyID: "hub-1-sidecar-proxy", Address: "10.0.1.2", Port: 21000, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1},
	}
	healthy.Endpoints["hub"] = hub
	for id, p := range healthy.Proxies {
		q := *p
		q.Upstreams = append(slices.Clone(p.Upstreams), catalog.Upstream{DestinationName: "hub", LocalBindAddress: "127.0.0.1", LocalBindPort: 9003})
		healthy.Proxies[id] = &q
	}
	critical := *healthy
	critical.Endpoints = maps.Clone(healthy.Endpoints)
	flipped := slices.Clone(hub)
	flipped[0].Health = catalog.HealthCritical
	critical.Endpoints["hub"] = flipped

	benchPublishInTurn(b, healthy, &critical)
}

// BenchmarkWildcardIntentionPublish2000Sidecars measures the publisher
// alone when a wildcard intention (* → *, deny) is added to a 1,000-
// service, 2,000-sidecar catalog: every sidecar's public listener (its
// RBAC) changes, and its references are checked again. The two
// translations are made once; iterations publish them in turn.
func BenchmarkWildcardIntentionPublish2000Sidecars(b *testing.B) {
	without := largeCatalog(1000)
	with := *without
	with.Version++
	with.Intentions = map[string][]catalog.Intention{"*": {{Source: "*", Destination: "*", Action: catalog.ActionDeny, Precedence: 5}}}
	benchPublishInTurn(b, without, &with)
}

// benchPublishInTurn translates first and second once with one Translator, then
// measures publishing the two translations in turn; every sidecar must
// change each time.
func benchPublishInTurn(b *testing.B, first, second *catalog.Snapshot) {
	b.Helper()
	x := translate.NewTranslator()
	results := []*translate.Result{x.Translate(first, benchMesh), x.Translate(second, benchMesh)}
	p := newPublisher(newNodeCache(nil), slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry()))
	ctx := context.Background()
	if _, err := p.publish(ctx, results[0], time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		changed, err := p.publish(ctx, results[i%2], time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if changed != len(first.Proxies) {
			b.Fatalf("%d sidecars changed, want all %d", changed, len(first.Proxies))
		}
	}
}
