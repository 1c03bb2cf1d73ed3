package discovery

import (
	"fmt"
	"testing"

	"github.com/weft-mesh/weft/catalog"
)

// largeState is the state of a mesh of n services × 2 sidecars, every
// watch answered.
func largeState(n int) *state {
	s := newState()
	s.catalogKnown, s.proxyDefaultsKnown, s.meshKnown, s.intentionsKnown = true, true, true, true
	s.serviceDefaults = map[string]*catalog.ServiceDefaults{}
	for i := range n {
		svc := fmt.Sprintf("svc-%d", i)
		s.serviceDefaults[svc] = &catalog.ServiceDefaults{Name: svc, Protocol: "http"}
		var r serviceResult
		for j := range 2 {
			id := fmt.Sprintf("%s-%d-sidecar-proxy", svc, j)
			r.proxies = append(r.proxies, &catalog.Proxy{ID: id, DestinationName: svc, Port: 20000 + j,
				Upstreams: []catalog.Upstream{{DestinationName: fmt.Sprintf("svc-%d", (i+1)%n), LocalBindPort: 9001}}})
			r.endpoints = append(r.endpoints, catalog.Endpoint{ProxyID: id, Address: "10.0.0.1", Port: 20000 + j, WeightPassing: 1, WeightWarning: 1})
		}
		s.setService(svc, r)
	}
	return s
}

// BenchmarkPublishState1000Services measures what the coordinator does per
// change in a 1,000-service catalog: build a snapshot of the state and
// compare it with the last one published.
func BenchmarkPublishState1000Services(b *testing.B) {
	s := largeState(1000)
	last := s.build("dc1", 1)
	b.ReportAllocs()
	for b.Loop() {
		r := s.services["svc-0"]
		eps := append([]catalog.Endpoint(nil), r.endpoints...)
		eps[0].Health = (eps[0].Health + 1) % 3
		s.setService("svc-0", serviceResult{proxies: r.proxies, endpoints: eps})
		snap := s.build("dc1", last.Version+1)
		if sameContent(last, snap) {
			b.Fatal("a changed state built an equal snapshot")
		}
		last = snap
	}
}
