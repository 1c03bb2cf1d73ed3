package translate

import (
	"reflect"

	"github.com/weft-mesh/weft/catalog"
)

// changedInputs lists the inputs that differ between two snapshots of one
// datacenter. Discovery shares unchanged values between its snapshots, so
// most comparisons end at pointer identity; values that are new but equal
// are compared deeply and do not count as changed.
func changedInputs(a, b *catalog.Snapshot) map[input]bool {
	changed := map[input]bool{}
	mark := func(kind inputKind) func(string) {
		return func(name string) { changed[input{kind, name}] = true }
	}
	if diffMap(a.Endpoints, b.Endpoints, sameSlice, mark(inEndpoints)) {
		changed[input{kind: inServiceNames}] = true
	}
	diffMap(a.ServiceDefaults, b.ServiceDefaults, samePointee, mark(inServiceDefaults))
	diffMap(a.ServiceResolvers, b.ServiceResolvers, samePointee, mark(inResolver))
	diffMap(a.ServiceSplitters, b.ServiceSplitters, samePointee, mark(inSplitter))
	diffMap(a.ServiceRouters, b.ServiceRouters, samePointee, mark(inRouter))
	diffMap(a.Intentions, b.Intentions, sameSlice, mark(inIntentions))
	if !samePointee(a.ProxyDefaults, b.ProxyDefaults) {
		changed[input{kind: inProxyDefaults}] = true
	}
	if !samePointee(a.Mesh, b.Mesh) {
		changed[input{kind: inMeshEntry}] = true
	}
	if a.ACLDefaultPolicy != b.ACLDefaultPolicy {
		changed[input{kind: inACLPolicy}] = true
	}
	return changed
}

// diffMap calls changed with every key whose value differs between a and
// b, a key in only one of them included. It reports whether the set of
// keys differs.
func diffMap[V any](a, b map[string]V, same func(V, V) bool, changed func(key string)) (keysDiffer bool) {
	for k, vb := range b {
		va, ok := a[k]
		if !ok {
			keysDiffer = true
		}
		if !ok || !same(va, vb) {
			changed(k)
		}
	}
	if len(a) == len(b) && !keysDiffer {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keysDiffer = true
			changed(k)
		}
	}
	return keysDiffer
}

// sameSlice reports whether two slices hold equal elements, comparing
// their backing arrays first.
func sameSlice[E any](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// samePointee reports whether two pointers are equal or point to equal
// values.
func samePointee[T any](a, b *T) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return reflect.DeepEqual(*a, *b)
}
