package discovery

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/consultest"
)

// The tests in this file run against a real Consul dev agent.

// instance describes one service instance with a sidecar to register.
type instance struct {
	service     string
	id          string
	port        int // the application's
	sidecarPort int
	upstreams   []api.Upstream
	protocol    string // the sidecar's proxy config "protocol"
	tags        []string
	meta        map[string]string
}

// register registers the instance and its sidecar.
func register(t *testing.T, client *api.Client, in instance) {
	t.Helper()
	if err := client.Agent().ServiceRegister(in.registration()); err != nil {
		t.Fatalf("register %s: %v", in.id, err)
	}
}

// registration is the instance's registration. The application has a
// passing TTL check "<id>-ttl" that tests can fail; the sidecar's only check
// aliases the application's health, replacing Consul's default TCP check of
// the sidecar port, which nothing listens on here.
func (in instance) registration() *api.AgentServiceRegistration {
	proxy := &api.AgentServiceConnectProxyConfig{Upstreams: in.upstreams}
	if in.protocol != "" {
		proxy.Config = map[string]any{"protocol": in.protocol}
	}
	return &api.AgentServiceRegistration{
		ID:    in.id,
		Name:  in.service,
		Port:  in.port,
		Tags:  in.tags,
		Meta:  in.meta,
		Check: &api.AgentServiceCheck{CheckID: in.id + "-ttl", TTL: "1h", Status: api.HealthPassing},
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{
			Port:   in.sidecarPort,
			Proxy:  proxy,
			Checks: api.AgentServiceChecks{{Name: "alias " + in.id, AliasService: in.id}},
		}},
	}
}

func allPassing(s *catalog.Snapshot, service string, n int) bool {
	eps := s.Endpoints[service]
	for _, e := range eps {
		if e.Health != catalog.HealthPassing {
			return false
		}
	}
	return len(eps) == n
}

func TestConsulSnapshotFollowsCatalog(t *testing.T) {
	srv := consultest.Start(t)
	client := srv.Client()
	register(t, client, instance{service: "api", id: "api-1", port: 8081, sidecarPort: 21001})
	register(t, client, instance{service: "api", id: "api-2", port: 8082, sidecarPort: 21002})
	register(t, client, instance{service: "web", id: "web-1", port: 8080, sidecarPort: 21000, protocol: "http",
		upstreams: []api.Upstream{{DestinationName: "api", LocalBindPort: 9191, Config: map[string]any{"protocol": "http"}}}})
	w := startWatcher(t, fastConfig(Config{Client: client}))

	snap := waitSnapshot(t, w, "api and web passing", func(s *catalog.Snapshot) bool {
		return allPassing(s, "api", 2) && allPassing(s, "web", 1)
	})
	node := srv.NodeName
	sidecar := func(service, id string, port, appPort int) *catalog.Proxy {
		return &catalog.Proxy{ID: id + "-sidecar-proxy", Name: service + "-sidecar-proxy", Node: node,
			Address: "127.0.0.1", Port: port, DestinationName: service, DestinationID: id,
			LocalAddress: "127.0.0.1", LocalPort: appPort}
	}
	web := sidecar("web", "web-1", 21000, 8080)
	web.Protocol = "http"
	web.Upstreams = []catalog.Upstream{{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191, Protocol: "http"}}
	wantProxies := map[string]*catalog.Proxy{
		"api-1-sidecar-proxy": sidecar("api", "api-1", 21001, 8081),
		"api-2-sidecar-proxy": sidecar("api", "api-2", 21002, 8082),
		"web-1-sidecar-proxy": web,
	}
	if diff := cmp.Diff(wantProxies, snap.Proxies); diff != "" {
		t.Errorf("proxies (-want +got):\n%s", diff)
	}
	endpoint := func(id string, port int) catalog.Endpoint {
		return catalog.Endpoint{ProxyID: id, Node: node, Address: "127.0.0.1", Port: port, WeightPassing: 1, WeightWarning: 1}
	}
	wantEndpoints := map[string][]catalog.Endpoint{
		"api": {endpoint("api-1-sidecar-proxy", 21001), endpoint("api-2-sidecar-proxy", 21002)},
		"web": {endpoint("web-1-sidecar-proxy", 21000)},
	}
	if diff := cmp.Diff(wantEndpoints, withoutVirtualIPs(t, snap.Endpoints)); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if snap.Datacenter != consultest.Datacenter || snap.ProtocolOf("api") != catalog.ProtocolTCP {
		t.Errorf("datacenter %q, api protocol %q; want %q, tcp", snap.Datacenter, snap.ProtocolOf("api"), consultest.Datacenter)
	}

	// Failing the application's check makes its sidecar's endpoint critical.
	if err := client.Agent().UpdateTTL("api-2-ttl", "down", api.HealthCritical); err != nil {
		t.Fatalf("fail api-2: %v", err)
	}
	snap = waitSnapshot(t, w, "api-2 critical", func(s *catalog.Snapshot) bool {
		h, _ := endpointHealth(s, "api", "api-2-sidecar-proxy")
		return h == catalog.HealthCritical
	})
	if h, _ := endpointHealth(snap, "api", "api-1-sidecar-proxy"); h != catalog.HealthPassing {
		t.Errorf("api-1 health = %v, want passing", h)
	}

	// Config entries.
	setEntry(t, client, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	waitSnapshot(t, w, "api on http", func(s *catalog.Snapshot) bool { return s.ProtocolOf("api") == catalog.ProtocolHTTP })
	setEntry(t, client, &api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
		Config: map[string]any{"protocol": "grpc"}})
	snap = waitSnapshot(t, w, "proxy-defaults", func(s *catalog.Snapshot) bool { return s.ProxyDefaults != nil })
	if got := snap.ProtocolOf("web"); got != catalog.ProtocolGRPC {
		t.Errorf("web protocol from proxy-defaults = %q, want grpc", got)
	}

	// Deregistering a service removes its sidecar.
	if err := client.Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatalf("deregister web-1: %v", err)
	}
	waitSnapshot(t, w, "web gone", hasProxies("api-1-sidecar-proxy", "api-2-sidecar-proxy"))
}

func setEntry(t *testing.T, client *api.Client, entry api.ConfigEntry) {
	t.Helper()
	if _, _, err := client.ConfigEntries().Set(entry, nil); err != nil {
		t.Fatalf("set %s %s: %v", entry.GetKind(), entry.GetName(), err)
	}
}

func TestConsulOutageKeepsLastGoodSnapshot(t *testing.T) {
	srv := consultest.Start(t)
	client := srv.Client()
	api1 := instance{service: "api", id: "api-1", port: 8081, sidecarPort: 21001}
	web1 := instance{service: "web", id: "web-1", port: 8080, sidecarPort: 21000,
		upstreams: []api.Upstream{{DestinationName: "api", LocalBindPort: 9191}}}
	register(t, client, api1)
	register(t, client, web1)
	w := startWatcher(t, fastConfig(Config{Client: client}))
	// Wait for the final state, so no snapshot is in flight when Consul stops.
	good := waitSnapshot(t, w, "api and web passing", func(s *catalog.Snapshot) bool {
		return allPassing(s, "api", 1) && allPassing(s, "web", 1)
	})

	srv.Stop()
	waitErrors(t, w, 10)
	expectNoSnapshot(t, w)
	if w.Current() != good {
		t.Fatalf("Current() = %s during the outage, want the last good %s", describe(w.Current()), describe(good))
	}

	// The restarted dev agent has lost its catalog. Once the services are
	// registered again, with one more instance, snapshots follow. (The same
	// services alone might yield no snapshot at all: one equal to the last
	// published is not published again.)
	srv.Restart()
	register(t, client, api1)
	register(t, client, web1)
	register(t, client, instance{service: "api", id: "api-2", port: 8082, sidecarPort: 21002})
	snap := waitSnapshot(t, w, "api and web again", func(s *catalog.Snapshot) bool {
		return allPassing(s, "api", 2) && allPassing(s, "web", 1)
	})
	if snap.Version <= good.Version {
		t.Errorf("version after the restart %d, want more than %d", snap.Version, good.Version)
	}
	for id, p := range good.Proxies {
		if diff := cmp.Diff(p, snap.Proxies[id]); diff != "" {
			t.Errorf("proxy %s after the restart (-before +after):\n%s", id, diff)
		}
	}
}

func TestConsulBurstIsCoalesced(t *testing.T) {
	const n = 20
	srv := consultest.Start(t)
	client := srv.Client()
	w := startWatcher(t, Config{Client: client}) // default debounce
	first := waitSnapshot(t, w, "an empty mesh", hasProxies())

	var wg sync.WaitGroup
	for i := range n {
		in := instance{service: fmt.Sprintf("svc-%02d", i), id: fmt.Sprintf("svc-%02d-1", i), port: 9000 + i, sidecarPort: 21000 + i}
		wg.Go(func() {
			if err := client.Agent().ServiceRegister(in.registration()); err != nil {
				t.Errorf("register %s: %v", in.id, err)
			}
		})
	}
	wg.Wait()
	// Every registration is in; health is not waited for: the sidecars'
	// alias checks of 20 services registered at once may settle late (or,
	// on a loaded machine, a dev agent may leave one critical), which says
	// nothing about coalescing.
	last := waitSnapshot(t, w, fmt.Sprintf("%d services registered", n), func(s *catalog.Snapshot) bool {
		if len(s.Proxies) != n {
			return false
		}
		for i := range n {
			if len(s.Endpoints[fmt.Sprintf("svc-%02d", i)]) != 1 {
				return false
			}
		}
		return true
	})
	published := last.Version - first.Version
	t.Logf("%d registrations, each changing the catalog and its sidecar's health, made %d snapshots", n, published)
	if published >= n/2 {
		t.Errorf("%d snapshots for a burst of %d registrations, want far fewer", published, n)
	}
}

// withoutVirtualIPs checks that every endpoint of a service carries the
// service's virtual IP, one per service from Consul's range 240.0.0.0/4,
// and returns the endpoints with the virtual IPs cleared (Consul decides
// which service gets which).
func withoutVirtualIPs(t *testing.T, in map[string][]catalog.Endpoint) map[string][]catalog.Endpoint {
	t.Helper()
	vipRange := netip.MustParsePrefix("240.0.0.0/4")
	owner := map[string]string{}
	out := map[string][]catalog.Endpoint{}
	for service, eps := range in {
		for _, e := range eps {
			ip, err := netip.ParseAddr(e.VirtualIP)
			if err != nil || !vipRange.Contains(ip) {
				t.Errorf("service %q, endpoint %q: virtual IP %q, want one in %s", service, e.ProxyID, e.VirtualIP, vipRange)
			}
			if prev, ok := owner[e.VirtualIP]; ok && prev != service {
				t.Errorf("virtual IP %s is both %q's and %q's", e.VirtualIP, prev, service)
			}
			owner[e.VirtualIP] = service
			e.VirtualIP = ""
			out[service] = append(out[service], e)
		}
	}
	return out
}

// TestSnapshotNamesTheAgentsDNSDomains: the snapshot carries the agent's
// DNS domain and alt domain (what an ingress gateway's certificate names
// "*.ingress.<domain>" under), lower case and without a trailing dot; an
// agent with Consul's defaults gives "consul".
func TestSnapshotNamesTheAgentsDNSDomains(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"defaults", nil, []string{"consul"}},
		{"domain and alt_domain", []string{`-hcl=domain = "Corp." alt_domain = "mesh.example"`}, []string{"corp", "mesh.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := consultest.Start(t, consultest.WithArgs(tt.args...))
			register(t, srv.Client(), instance{service: "api", id: "api-1", port: 8081, sidecarPort: 21001})
			w := startWatcher(t, fastConfig(Config{Client: srv.Client()}))
			snap := waitSnapshot(t, w, "api registered", func(s *catalog.Snapshot) bool { return len(s.Proxies) == 1 })
			if diff := cmp.Diff(tt.want, snap.DNSDomains); diff != "" {
				t.Errorf("DNS domains (-want +got):\n%s", diff)
			}
		})
	}
}
