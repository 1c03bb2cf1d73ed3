package discovery

import (
	"maps"
	"reflect"
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

	// services has the translated answer of each service's connect watch,
	// by service name, once that watch has answered.
	services map[string]serviceResult

	// serviceDefaults is nil until the service-defaults watch answers.
	serviceDefaults map[string]*catalog.ServiceDefaults

	proxyDefaultsKnown bool
	proxyDefaults      *catalog.ProxyDefaults

	meshKnown bool
	mesh      *catalog.Mesh

	intentionsKnown  bool
	intentions       map[string][]catalog.Intention
	aclDefaultPolicy string

	// chain holds the service-resolver, -splitter and -router entries.
	chain chainEntries
}

func newState() *state {
	return &state{services: make(map[string]serviceResult)}
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
		Proxies:          make(map[string]*catalog.Proxy),
		Endpoints:        make(map[string][]catalog.Endpoint, len(s.services)),
		ProxyDefaults:    s.proxyDefaults,
		Mesh:             s.mesh,
		Intentions:       maps.Clone(s.intentions),
		ACLDefaultPolicy: s.aclDefaultPolicy,
		ServiceDefaults:  cloneOrEmpty(s.serviceDefaults),
		ServiceResolvers: cloneOrEmpty(s.chain.resolvers),
		ServiceSplitters: cloneOrEmpty(s.chain.splitters),
		ServiceRouters:   cloneOrEmpty(s.chain.routers),
	}
	for _, name := range slices.Sorted(maps.Keys(s.services)) {
		r := s.services[name]
		for _, p := range r.proxies {
			if _, dup := snap.Proxies[p.ID]; !dup {
				snap.Proxies[p.ID] = p
			}
		}
		if len(r.endpoints) > 0 {
			snap.Endpoints[name] = slices.Clip(r.endpoints)
		}
	}
	return snap
}

// cloneOrEmpty returns a copy of m, never nil.
func cloneOrEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return make(map[string]V)
	}
	return maps.Clone(m)
}

// sameContent reports whether two snapshots describe the same mesh, that
// is, are equal but for their versions. Values shared between the two (a
// service whose watch did not answer since) compare by pointer, so the
// cost is that of the values that were replaced.
func sameContent(a, b *catalog.Snapshot) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Datacenter == b.Datacenter && a.ACLDefaultPolicy == b.ACLDefaultPolicy &&
		samePointee(a.ProxyDefaults, b.ProxyDefaults) && samePointee(a.Mesh, b.Mesh) &&
		maps.EqualFunc(a.Proxies, b.Proxies, samePointee) &&
		maps.EqualFunc(a.Endpoints, b.Endpoints, sameSlice) &&
		maps.EqualFunc(a.ServiceDefaults, b.ServiceDefaults, samePointee) &&
		maps.EqualFunc(a.ServiceResolvers, b.ServiceResolvers, samePointee) &&
		maps.EqualFunc(a.ServiceSplitters, b.ServiceSplitters, samePointee) &&
		maps.EqualFunc(a.ServiceRouters, b.ServiceRouters, samePointee) &&
		maps.EqualFunc(a.Intentions, b.Intentions, sameSlice)
}

// samePointee reports whether two pointers are equal or point to equal
// values.
func samePointee[T any](a, b *T) bool {
	if a == b {
		return true
	}
	return a != nil && b != nil && reflect.DeepEqual(*a, *b)
}

// sameSlice reports whether two slices hold equal elements, comparing
// their backing arrays first.
func sameSlice[E any](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || reflect.DeepEqual(a, b)
}
