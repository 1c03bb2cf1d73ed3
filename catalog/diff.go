package catalog

import (
	"reflect"
	"slices"
)

// Diff is what differs between two snapshots, with a field for every
// field of Snapshot, of the same name: true where a single value differs,
// the keys that differ where a map does. Compare fills it; a test keeps
// it in step with Snapshot.
type Diff struct {
	Version          bool
	Datacenter       bool
	DNSDomains       bool
	Proxies          KeyDiff
	Endpoints        KeyDiff
	ServiceDefaults  KeyDiff
	ProxyDefaults    bool
	ServiceResolvers KeyDiff
	ServiceSplitters KeyDiff
	ServiceRouters   KeyDiff
	Intentions       KeyDiff
	ACLDefaultPolicy bool
	Mesh             bool

	IntentionsNotApplied KeyDiff
	ExportedServices     bool

	Peers    KeyDiff
	Imported KeyDiff
	Exports  KeyDiff

	IngressGateways KeyDiff
	APIGateways     KeyDiff
	MeshGateways    bool

	TerminatingGateways KeyDiff
	LinkedInstances     KeyDiff
}

// KeyDiff is what differs in one map of two snapshots.
type KeyDiff struct {
	// Changed are the keys whose values differ, keys that only one of
	// the snapshots has included, in no particular order.
	Changed []string
	// KeysChanged reports whether some key is in only one of the
	// snapshots.
	KeysChanged bool
}

// Compare returns what differs between a and b, which must not be nil.
//
// Discovery shares unchanged values between its snapshots, so most
// comparisons end at pointer identity and the cost is that of the values
// that were replaced; values that are new but equal are compared deeply
// and do not count as changed.
func Compare(a, b *Snapshot) Diff {
	return Diff{
		Version:          a.Version != b.Version,
		Datacenter:       a.Datacenter != b.Datacenter,
		DNSDomains:       !slices.Equal(a.DNSDomains, b.DNSDomains),
		Proxies:          diffMap(a.Proxies, b.Proxies, samePointee),
		Endpoints:        diffMap(a.Endpoints, b.Endpoints, SameEndpoints),
		ServiceDefaults:  diffMap(a.ServiceDefaults, b.ServiceDefaults, samePointee),
		ProxyDefaults:    !samePointee(a.ProxyDefaults, b.ProxyDefaults),
		ServiceResolvers: diffMap(a.ServiceResolvers, b.ServiceResolvers, samePointee),
		ServiceSplitters: diffMap(a.ServiceSplitters, b.ServiceSplitters, samePointee),
		ServiceRouters:   diffMap(a.ServiceRouters, b.ServiceRouters, samePointee),
		Intentions:       diffMap(a.Intentions, b.Intentions, sameSlice),
		ACLDefaultPolicy: a.ACLDefaultPolicy != b.ACLDefaultPolicy,
		Mesh:             !samePointee(a.Mesh, b.Mesh),

		IntentionsNotApplied: diffMap(a.IntentionsNotApplied, b.IntentionsNotApplied, samePointee),
		ExportedServices:     !samePointee(a.ExportedServices, b.ExportedServices),

		Peers:    diffMap(a.Peers, b.Peers, samePointee),
		Imported: diffMap(a.Imported, b.Imported, samePointee),
		Exports:  diffMap(a.Exports, b.Exports, sameSlice),

		IngressGateways: diffMap(a.IngressGateways, b.IngressGateways, samePointee),
		APIGateways:     diffMap(a.APIGateways, b.APIGateways, samePointee),
		MeshGateways:    !sameSlice(a.MeshGateways, b.MeshGateways),

		TerminatingGateways: diffMap(a.TerminatingGateways, b.TerminatingGateways, samePointee),
		LinkedInstances:     diffMap(a.LinkedInstances, b.LinkedInstances, SameEndpoints),
	}
}

// SameMesh reports whether the two snapshots compared describe the same
// mesh: nothing but their Version differs.
func (d Diff) SameMesh() bool {
	return !d.Datacenter && !d.DNSDomains && !d.ProxyDefaults && !d.ACLDefaultPolicy && !d.Mesh &&
		d.Proxies.empty() && d.Endpoints.empty() && d.ServiceDefaults.empty() &&
		d.ServiceResolvers.empty() && d.ServiceSplitters.empty() && d.ServiceRouters.empty() &&
		d.Intentions.empty() && d.IntentionsNotApplied.empty() && !d.ExportedServices &&
		d.Peers.empty() && d.Imported.empty() && d.Exports.empty() && d.IngressGateways.empty() && d.APIGateways.empty() && !d.MeshGateways &&
		d.TerminatingGateways.empty() && d.LinkedInstances.empty()
}

func (k KeyDiff) empty() bool { return len(k.Changed) == 0 }

// SameEndpoints reports whether two endpoint lists hold equal endpoints,
// comparing their backing arrays first.
func SameEndpoints(a, b []Endpoint) bool { return sameSlice(a, b) }

// diffMap returns the keys whose values differ between a and b.
func diffMap[V any](a, b map[string]V, same func(V, V) bool) KeyDiff {
	var d KeyDiff
	for k, vb := range b {
		va, ok := a[k]
		if !ok {
			d.KeysChanged = true
		}
		if !ok || !same(va, vb) {
			d.Changed = append(d.Changed, k)
		}
	}
	if len(a) == len(b) && !d.KeysChanged {
		return d // every key of b is in a: they have the same keys
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			d.KeysChanged = true
			d.Changed = append(d.Changed, k)
		}
	}
	return d
}

// sameSlice reports whether two slices hold equal elements, comparing
// their backing arrays first.
func sameSlice[E any](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || reflect.DeepEqual(a, b)
}

// samePointee reports whether two pointers are equal or point to equal
// values.
func samePointee[T any](a, b *T) bool {
	if a == b {
		return true
	}
	return a != nil && b != nil && reflect.DeepEqual(*a, *b)
}
