package translate

import (
	"fmt"
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// Fixtures of the L7 golden cases: the proxy web-1 with upstreams to the
// services below, all http unless a case says otherwise.

// otherServices have one passing instance each, at 10.0.<i+2>.1.
var otherServices = []string{
	"api-admin", "api-backup", "api-canary", "api-next", "api-v2", "auth", "billing", "cache", "cache-a",
	"db", "images", "reports", "search", "search-b", "video", "video-hd",
}

func l7Endpoints() map[string][]catalog.Endpoint {
	eps := map[string][]catalog.Endpoint{"api": {
		instance("api", 1, "10.0.1.1", catalog.HealthPassing, "v1", "primary"),
		instance("api", 2, "10.0.1.2", catalog.HealthPassing, "v2", "canary"),
		instance("api", 3, "10.0.1.3", catalog.HealthWarning, "v2", "canary"),
		instance("api", 4, "10.0.1.4", catalog.HealthCritical, "v1"),
	}}
	eps["api"][2].WeightPassing, eps["api"][2].WeightWarning = 10, 2
	for i, svc := range otherServices {
		eps[svc] = []catalog.Endpoint{instance(svc, 1, fmt.Sprintf("10.0.%d.1", i+2), catalog.HealthPassing, "v1")}
	}
	eps["api-v2"] = append(eps["api-v2"], instance("api-v2", 2, "10.0.99.2", catalog.HealthPassing, "v1", "green"))
	eps["api-v2"][0].Tags = []string{"blue"}
	return eps
}

func instance(svc string, n int, addr string, h catalog.Health, version string, tags ...string) catalog.Endpoint {
	return catalog.Endpoint{
		ProxyID: fmt.Sprintf("%s-%d-sidecar-proxy", svc, n), Node: "node-1", Address: addr, Port: 21000,
		Health: h, WeightPassing: 1, WeightWarning: 1,
		Tags: tags, Meta: map[string]string{"version": version},
	}
}

func up(service string, port int) catalog.Upstream {
	return catalog.Upstream{DestinationName: service, LocalBindAddress: "127.0.0.1", LocalBindPort: port}
}

// l7Snap is a catalog with web-1's upstreams, every service on http (from
// proxy-defaults) and no entries; modify adds a case's entries.
func l7Snap(upstreams []catalog.Upstream, modify func(s *catalog.Snapshot)) *catalog.Snapshot {
	s := &catalog.Snapshot{
		Datacenter:       "dc1",
		Proxies:          map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(upstreams...)},
		Endpoints:        l7Endpoints(),
		ProxyDefaults:    &catalog.ProxyDefaults{Protocol: catalog.ProtocolHTTP},
		ServiceDefaults:  map[string]*catalog.ServiceDefaults{},
		ServiceResolvers: map[string]*catalog.ServiceResolver{},
		ServiceSplitters: map[string]*catalog.ServiceSplitter{},
		ServiceRouters:   map[string]*catalog.ServiceRouter{},
	}
	modify(s)
	return s
}

// versionSubsets is a resolver of api with subsets v1 and v2 by the
// instances' version metadata.
func versionSubsets() *catalog.ServiceResolver {
	return &catalog.ServiceResolver{Name: "api", Subsets: map[string]catalog.ResolverSubset{
		"v1": {Filter: "Service.Meta.version == v1"},
		"v2": {Filter: "Service.Meta.version == v2"},
	}}
}

func protocols(s *catalog.Snapshot, protocol string, services ...string) {
	for _, svc := range services {
		s.ServiceDefaults[svc] = &catalog.ServiceDefaults{Name: svc, Protocol: protocol}
	}
}

func ptr[T any](v T) *T { return &v }

func seconds(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }
