package discovery

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// Cluster peering and mesh gateways (catalog/peering.go): the ACTIVE
// peerings, the services each peer exports here, and this cluster's mesh
// gateways. None of these watches holds back the first snapshot: a
// sidecar without peered upstreams does not depend on them.

// peeringState is what the peering and gateway watches found (the
// ingress-gateway entries too, ingress.go). It belongs to the coordinator
// goroutine; its values are immutable once stored.
type peeringState struct {
	peers    map[string]*catalog.Peer
	imported map[string]*catalog.ImportedService
	// gateways are the gateway registrations by gateway service name,
	// then by proxy ID.
	gateways map[string]map[string]gatewayEntry
	exports  map[string][]string
	ingress  map[string]*catalog.IngressGateway
	api      apiGatewayState // apigateway.go

	// Running watches: one per imported service a sidecar calls or a
	// service-resolver fails over to, one per
	// gateway service name.
	importWatches, gatewayWatches watchSet
}

// watchSet is a set of running watches by key; gen tells a watch's
// answers from those of an earlier watch of the same key.
type watchSet struct {
	running map[string]*serviceWatch
}

// sync starts a watch for every key of want it lacks and stops those of
// keys not in want, returning the stopped keys.
func (w *watchSet) sync(ctx context.Context, c *coordinator, want []string, run func(ctx context.Context, key string, gen uint64)) []string {
	if w.running == nil {
		w.running = map[string]*serviceWatch{}
	}
	keep := map[string]bool{}
	for _, k := range want {
		keep[k] = true
		if w.running[k] == nil {
			c.nextGen++
			gen := c.nextGen
			wctx, cancel := context.WithCancel(ctx)
			w.running[k] = &serviceWatch{gen: gen, cancel: cancel}
			c.spawn(wctx, func(ctx context.Context) { run(ctx, k, gen) })
		}
	}
	var stopped []string
	for k, sw := range w.running {
		if !keep[k] {
			sw.cancel()
			delete(w.running, k)
			stopped = append(stopped, k)
		}
	}
	return stopped
}

// current reports whether gen is the running watch of key.
func (w *watchSet) current(key string, gen uint64) bool {
	sw := w.running[key]
	return sw != nil && sw.gen == gen
}

// watchPeerings watches /v1/peerings.
func (c *coordinator) watchPeerings(ctx context.Context) {
	fetch := func(q *api.QueryOptions) (map[string]*catalog.Peer, uint64, error) {
		list, meta, err := c.env.client.Peerings().List(q.Context(), q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch peerings: %w", err)
		}
		return convertPeerings(list, c.env.logger.Warn), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "peerings", fetch, func(ctx context.Context, peers map[string]*catalog.Peer) bool {
		return c.send(ctx, func(context.Context) { c.setPeers(peers) })
	})
}

// convertPeerings keeps the ACTIVE peerings. A peering whose roots do not
// parse is kept without a trust domain, and warn says why: its services
// cannot be verified, and translation reports that for each upstream.
func convertPeerings(list []*api.Peering, warn func(string, ...any)) map[string]*catalog.Peer {
	out := map[string]*catalog.Peer{}
	for _, p := range list {
		if p == nil || p.State != api.PeeringStateActive {
			continue
		}
		td, err := rootsTrustDomain(p.PeerCAPems)
		if err != nil {
			warn("peering: the peer's CA roots name no trust domain; its services cannot be verified", "peer", p.Name, "error", err)
		}
		out[p.Name] = &catalog.Peer{Name: p.Name, Datacenter: p.Remote.Datacenter, TrustDomain: td, RootsPEM: slices.Clone(p.PeerCAPems)}
	}
	return out
}

// rootsTrustDomain reads the trust domain a peer's Connect CA roots name
// in their spiffe:// URI SAN.
func rootsTrustDomain(pems []string) (string, error) {
	var sans [][]string
	for i, s := range pems {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return "", fmt.Errorf("root %d: not PEM", i)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("root %d: %w", i, err)
		}
		var uris []string
		for _, u := range cert.URIs {
			uris = append(uris, u.String())
		}
		sans = append(sans, uris)
	}
	td := catalog.TrustDomainOfRoots(sans)
	if td == "" {
		return "", fmt.Errorf("no spiffe:// URI SAN in %d roots", len(pems))
	}
	return td, nil
}

// setPeers stores the ACTIVE peerings; the imports of a peer that left
// stop at the next syncImports.
func (c *coordinator) setPeers(peers map[string]*catalog.Peer) {
	c.state.peering.peers = peers
}

// syncImports keeps one watch per service that a sidecar's upstream
// imports from an ACTIVE peer, as Consul's own proxies watch each peered
// upstream (Consul 1.14 lists imported services in no catalog endpoint).
// It runs once per debounce window, before a snapshot is built: with a
// peer, its cost is that of walking every sidecar's upstreams; without
// one (nothing can be imported), nothing is walked, which at 10,000
// sidecars was a fifth of the control plane's CPU in a rolling deploy.
func (c *coordinator) syncImports(ctx context.Context) {
	ps := &c.state.peering
	var want []string
	if len(ps.peers) > 0 {
		want = c.importsWanted()
	}
	for _, gone := range ps.importWatches.sync(ctx, c, want, func(ctx context.Context, key string, gen uint64) {
		peer, svc := splitImportedKey(key)
		c.watchImported(ctx, peer, svc, gen)
	}) {
		delete(ps.imported, gone)
	}
}

// importsWanted are the keys (catalog.ImportedKey) of the services that
// sidecars' upstreams and resolvers' failover targets import from known
// peers.
func (c *coordinator) importsWanted() []string {
	ps := &c.state.peering
	seen := map[string]bool{}
	var want []string
	add := func(peer, service string) {
		if peer == "" || ps.peers[peer] == nil {
			return // the common case costs no allocation
		}
		if key := catalog.ImportedKey(peer, service); !seen[key] {
			seen[key] = true
			want = append(want, key)
		}
	}
	for _, p := range c.state.proxies {
		for i := range p.Upstreams {
			add(p.Upstreams[i].Peer, p.Upstreams[i].DestinationName)
		}
	}
	// A service-resolver failing over to a peer's service (translate's
	// aggregate clusters) needs its instances too.
	for _, r := range c.state.chain.resolvers {
		for _, fo := range r.Failover {
			for _, tg := range fo.Targets {
				add(tg.Peer, cmp.Or(tg.Service, r.Name))
			}
		}
	}
	return want
}

func splitImportedKey(key string) (peer, service string) {
	peer, service, _ = strings.Cut(key, "/")
	return peer, service
}

// watchImported watches the instances of one imported service.
func (c *coordinator) watchImported(ctx context.Context, peer, service string, gen uint64) {
	key := catalog.ImportedKey(peer, service)
	fetch := func(q *api.QueryOptions) (*catalog.ImportedService, uint64, error) {
		q.Peer = peer
		var entries []peerEntry
		meta, err := c.env.client.Raw().Query("/v1/health/connect/"+service, &entries, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch service %q imported from peer %q: %w", service, peer, err)
		}
		return convertImported(peer, service, entries), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "health/connect/"+service+"?peer="+peer, fetch, func(ctx context.Context, s *catalog.ImportedService) bool {
		return c.send(ctx, func(context.Context) {
			ps := &c.state.peering
			if !ps.importWatches.current(key, gen) {
				return
			}
			if ps.imported == nil {
				ps.imported = map[string]*catalog.ImportedService{}
			}
			ps.imported[key] = s
		})
	})
}

// peerEntry is one entry of /v1/health/connect/<service>?peer=: a proxy
// instance Consul replicated from the peer, whose address is the peer's
// mesh gateway. The api package does not decode Connect.PeerMeta.
type peerEntry struct {
	Node    *api.Node
	Service struct {
		ID      string
		Service string
		Address string
		Port    int
		Weights api.AgentWeights
		Tags    []string
		Meta    map[string]string
		Connect struct {
			PeerMeta *struct {
				SNI      []string
				SpiffeID []string
				Protocol string
			}
		}
	}
	Checks api.HealthChecks
}

// convertImported converts the instances of an imported service.
func convertImported(peer, service string, entries []peerEntry) *catalog.ImportedService {
	s := &catalog.ImportedService{Peer: peer, Service: service}
	for _, e := range entries {
		if m := e.Service.Connect.PeerMeta; m != nil && s.SNI == "" && len(m.SNI) > 0 {
			s.SNI, s.SPIFFEIDs, s.Protocol = m.SNI[0], slices.Clone(m.SpiffeID), m.Protocol
		}
		w := e.Service.Weights
		if w.Passing == 0 && w.Warning == 0 {
			w = api.AgentWeights{Passing: 1, Warning: 1}
		}
		addr := e.Service.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		s.Endpoints = append(s.Endpoints, catalog.Endpoint{
			ProxyID: e.Service.ID, Node: nodeName(e.Node), Address: addr, Port: e.Service.Port,
			Health: aggregateHealth(e.Checks), WeightPassing: w.Passing, WeightWarning: w.Warning,
			Tags: nilIfNoTags(e.Service.Tags), Meta: nilIfEmpty(e.Service.Meta),
		})
	}
	slices.SortFunc(s.Endpoints, func(a, b catalog.Endpoint) int {
		return cmp.Or(cmp.Compare(a.ProxyID, b.ProxyID), cmp.Compare(a.Node, b.Node))
	})
	return s
}

// gatewayFilter selects the service names of the gateways Weft serves.
const gatewayFilter = `ServiceKind == "mesh-gateway" or ServiceKind == "ingress-gateway" or ServiceKind == "terminating-gateway" or ServiceKind == "api-gateway"`

// watchGatewayNames watches the names of this cluster's mesh gateways and
// keeps one watch per name.
func (c *coordinator) watchGatewayNames(ctx context.Context) {
	fetch := func(q *api.QueryOptions) ([]string, uint64, error) {
		q.Filter = gatewayFilter
		services, meta, err := c.env.client.Catalog().Services(q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch mesh gateway names: %w", err)
		}
		return slices.Sorted(maps.Keys(services)), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "catalog/services?kind=gateways", fetch, func(ctx context.Context, names []string) bool {
		return c.send(ctx, func(ctx context.Context) {
			ps := &c.state.peering
			for _, gone := range ps.gatewayWatches.sync(ctx, c, names, c.watchGateway) {
				delete(ps.gateways, gone)
			}
		})
	})
}

// watchGateway watches the instances of one mesh gateway service.
func (c *coordinator) watchGateway(ctx context.Context, name string, gen uint64) {
	fetch := func(q *api.QueryOptions) (map[string]gatewayEntry, uint64, error) {
		entries, meta, err := c.env.client.Health().Service(name, "", false, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch mesh gateway %q: %w", name, err)
		}
		return convertGateways(entries), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "health/service/"+name, fetch, func(ctx context.Context, gws map[string]gatewayEntry) bool {
		return c.send(ctx, func(context.Context) {
			ps := &c.state.peering
			if !ps.gatewayWatches.current(name, gen) {
				return
			}
			if ps.gateways == nil {
				ps.gateways = map[string]map[string]gatewayEntry{}
			}
			ps.gateways[name] = gws
		})
	})
}

// gatewayEntry is a gateway registration: the proxy, and its health (the
// aggregate of its checks), which sidecars dialing mesh gateways use.
type gatewayEntry struct {
	proxy  *catalog.Proxy
	health catalog.Health
}

// convertGateways converts gateway registrations (mesh, ingress and
// terminating) into
// proxies of their kind, by ID.
func convertGateways(entries []*api.ServiceEntry) map[string]gatewayEntry {
	out := map[string]gatewayEntry{}
	for _, e := range entries {
		if e == nil || e.Service == nil {
			continue
		}
		kind := string(e.Service.Kind)
		if kind != catalog.KindMeshGateway && kind != catalog.KindIngressGateway && kind != catalog.KindTerminatingGateway && kind != catalog.KindAPIGateway {
			continue
		}
		out[e.Service.ID] = gatewayEntry{&catalog.Proxy{ID: e.Service.ID, Name: e.Service.Service, Node: nodeName(e.Node),
			Kind: kind, Address: serviceAddress(e), Port: e.Service.Port}, aggregateHealth(e.Checks)}
	}
	return out
}

// addTo adds what the peering watches found to a snapshot being built:
// the gateways join its proxies (a sidecar's ID wins a collision).
func (ps *peeringState) addTo(snap *catalog.Snapshot) {
	snap.Peers = maps.Clone(ps.peers)
	snap.Imported = maps.Clone(ps.imported)
	snap.Exports = maps.Clone(ps.exports)
	snap.IngressGateways = maps.Clone(ps.ingress)
	snap.APIGateways = ps.api.join()
	snap.MeshGateways = ps.meshGatewayEndpoints()
	for _, name := range slices.Sorted(maps.Keys(ps.gateways)) {
		for id, gw := range ps.gateways[name] {
			if _, taken := snap.Proxies[id]; !taken {
				snap.Proxies[id] = gw.proxy
			}
		}
	}
}

// meshGatewayEndpoints are this cluster's mesh gateways as endpoints (their
// registered address and port, the health of their checks), sorted.
func (ps *peeringState) meshGatewayEndpoints() []catalog.Endpoint {
	var out []catalog.Endpoint
	for _, name := range slices.Sorted(maps.Keys(ps.gateways)) {
		gws := ps.gateways[name]
		for _, id := range slices.Sorted(maps.Keys(gws)) {
			if gw := gws[id]; gw.proxy.Kind == catalog.KindMeshGateway {
				p := gw.proxy
				out = append(out, catalog.Endpoint{ProxyID: p.ID, Node: p.Node, Address: p.Address, Port: p.Port,
					Health: gw.health, WeightPassing: 1, WeightWarning: 1})
			}
		}
	}
	return out
}

// convertExports reads, from the exported-services entry, the peers each
// local service is exported to.
func convertExports(entries []api.ConfigEntry) map[string][]string {
	out := map[string][]string{}
	for _, e := range entries {
		es, ok := e.(*api.ExportedServicesConfigEntry)
		if !ok || es == nil {
			continue
		}
		for _, svc := range es.Services {
			for _, c := range svc.Consumers {
				if c.Peer != "" {
					out[svc.Name] = append(out[svc.Name], c.Peer)
				}
			}
		}
	}
	for svc, peers := range out {
		slices.Sort(peers)
		out[svc] = slices.Compact(peers)
	}
	return out
}
