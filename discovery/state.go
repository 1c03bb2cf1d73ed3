package discovery

import (
	"maps"
	"slices"

	"github.com/weft-mesh/weft/catalog"
)

// state holds the latest good answer of every watch; it is what snapshots
// are built from. It belongs to the coordinator goroutine. The values it
// holds are immutable and shared with published snapshots: a new answer
// replaces a value, never modifies it.
type state struct {
	// catalogKnown is set once the service-name watch has answered.
	catalogKnown bool

	// services has the converted answer of each service's connect watch,
	// by service name, once that watch has answered. It is changed only
	// through setService and deleteService, which keep proxies, endpoints
	// and owners in step.
	services map[string]serviceResult
	// proxies and endpoints are what a snapshot's Proxies and Endpoints
	// hold, kept up to date as services change so that building a
	// snapshot copies them instead of walking every service.
	proxies   map[string]*catalog.Proxy
	endpoints map[string][]catalog.Endpoint
	// owners are, by proxy ID, the services with a sidecar of that ID,
	// sorted: IDs are unique per Consul node only.
	owners map[string][]string

	// serviceDefaults is nil until the service-defaults watch answers.
	serviceDefaults map[string]*catalog.ServiceDefaults

	proxyDefaultsKnown bool
	proxyDefaults      *catalog.ProxyDefaults

	meshKnown bool
	mesh      *catalog.Mesh

	intentionsKnown      bool
	intentions           map[string][]catalog.Intention
	intentionsNotApplied map[string]*catalog.EntryNote
	aclDefaultPolicy     string

	// exportedServices is the exported-services entry, nil until its
	// watch answers or when there is none. The watch is not waited for
	// before the first snapshot (unanswered): no proxy's resources depend
	// on it.
	exportedServices *catalog.EntryNote

	// chain holds the service-resolver, -splitter and -router entries.
	chain chainEntries

	// peering holds what concerns gateways: the peerings, imported
	// services, exports, gateway registrations (peering.go) and
	// ingress-gateway entries (ingress.go).
	peering peeringState
	// terminating holds the terminating gateways' linked services and
	// their instances (terminating.go).
	terminating terminatingState
}

func newState() *state {
	return &state{services: make(map[string]serviceResult), proxies: make(map[string]*catalog.Proxy),
		endpoints: make(map[string][]catalog.Endpoint), owners: make(map[string][]string)}
}

// unanswered counts the watches, other than the per-service ones, that
// have not answered yet: the catalog and the config-entry watches.
func (s *state) unanswered() int {
	n := 0
	answered := append([]bool{s.catalogKnown, s.serviceDefaults != nil, s.proxyDefaultsKnown, s.meshKnown, s.intentionsKnown}, s.chain.known()...)
	for _, ok := range answered {
		if !ok {
			n++
		}
	}
	return n
}

// build returns a new snapshot of the state. Its maps are new; the values
// in them are shared with the state and earlier snapshots.
//
// Service IDs are unique per Consul node, not per datacenter. Should two
// nodes register sidecars with one ID, Proxies holds the first by
// destination service name, then node name (both remain in Endpoints).
func (s *state) build(datacenter string, version uint64) *catalog.Snapshot {
	snap := &catalog.Snapshot{
		Version:          version,
		Datacenter:       datacenter,
		Proxies:          maps.Clone(s.proxies),
		Endpoints:        maps.Clone(s.endpoints),
		ProxyDefaults:    s.proxyDefaults,
		Mesh:             s.mesh,
		Intentions:       maps.Clone(s.intentions),
		ACLDefaultPolicy: s.aclDefaultPolicy,
		ServiceDefaults:  cloneOrEmpty(s.serviceDefaults),
		ServiceResolvers: cloneOrEmpty(s.chain.resolvers),
		ServiceSplitters: cloneOrEmpty(s.chain.splitters),
		ServiceRouters:   cloneOrEmpty(s.chain.routers),

		IntentionsNotApplied: maps.Clone(s.intentionsNotApplied),
		ExportedServices:     s.exportedServices,
	}
	s.peering.addTo(snap)
	s.terminating.addTo(snap)
	return snap
}

// setService stores the answer of a service's connect watch.
func (s *state) setService(name string, r serviceResult) {
	old := s.services[name]
	s.services[name] = r
	s.serviceChanged(name, old, r)
}

// deleteService drops a service that left the catalog.
func (s *state) deleteService(name string) {
	old, ok := s.services[name]
	if !ok {
		return
	}
	delete(s.services, name)
	s.serviceChanged(name, old, serviceResult{})
}

// serviceChanged brings endpoints, owners and proxies up to date with a
// service's answer changing from old to next.
func (s *state) serviceChanged(name string, old, next serviceResult) {
	if len(next.endpoints) > 0 {
		s.endpoints[name] = slices.Clip(next.endpoints)
	} else {
		delete(s.endpoints, name)
	}
	ids := map[string]bool{}
	for _, p := range old.proxies {
		ids[p.ID] = true
		s.owners[p.ID] = slices.DeleteFunc(s.owners[p.ID], func(svc string) bool { return svc == name })
	}
	for _, p := range next.proxies {
		ids[p.ID] = true
		if o := s.owners[p.ID]; !slices.Contains(o, name) {
			i, _ := slices.BinarySearch(o, name)
			s.owners[p.ID] = slices.Insert(o, i, name)
		}
	}
	for id := range ids {
		s.electProxy(id)
	}
}

// electProxy sets the proxy published under an ID: the first of its
// owners' sidecars with that ID, by service name, then node name.
func (s *state) electProxy(id string) {
	for _, svc := range s.owners[id] {
		for _, p := range s.services[svc].proxies {
			if p.ID == id {
				s.proxies[id] = p
				return
			}
		}
	}
	delete(s.proxies, id)
	delete(s.owners, id)
}

// cloneOrEmpty returns a copy of m, never nil.
func cloneOrEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return make(map[string]V)
	}
	return maps.Clone(m)
}

// sameContent reports whether two snapshots describe the same mesh, that
// is, are equal but for their versions (see catalog.Compare).
func sameContent(a, b *catalog.Snapshot) bool {
	if a == nil || b == nil {
		return a == b
	}
	return catalog.Compare(a, b).SameMesh()
}
