package translate

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/catalog"
)

// Translator translates a sequence of catalog snapshots, doing only the
// work a change needs: a proxy is translated again only when its own
// registration, or a part of the snapshot its last translation read (the
// instances of its upstreams' services and their failover targets, the
// config entries of their chains, its service's defaults and intentions,
// …), differs from the previous snapshot. Every other proxy keeps its
// previous *Resources, pointer and all, so a consumer can tell unchanged
// proxies apart by pointer. A change of Mesh or of the datacenter
// translates everything again.
//
// Translate returns what the pure function Translate returns for the same
// arguments; only which equal protos are shared by pointer may differ.
// A Translator is used from one goroutine; the Resources it returns are
// shared with later results and must not be modified.
type Translator struct {
	last *catalog.Snapshot // nil before the first Translate
	mesh Mesh
	// roots and otlp are the shared resources built from mesh.
	roots *tlsv3.Secret
	otlp  *clusterv3.Cluster
	// unusable has the services with instances no proxy could dial.
	unusable map[string]usableEndpoints
	proxies  map[string]*proxyEntry
	// resources and problems are those of proxies, as Result holds them:
	// every proxy with a registration, every proxy with problems.
	resources map[string]*Resources
	problems  map[string][]error
	// changed are the proxies whose resources the current Translate
	// replaced or removed (setResources, dropResources).
	changed map[string]struct{}
	// readers are the IDs of the proxies whose last translation read an
	// input, by input.
	readers map[input]map[string]bool

	proxyless proxylessCache
}

// proxyEntry is the last translation of one proxy.
type proxyEntry struct {
	res      *Resources // nil for a nil registration
	problems []error
	inputs   []input // sorted, each once
	// loads rebuild res.Endpoints, by index; nil without any built from
	// loadEndpoints, and a zero loadSource for each other.
	loads []loadSource
	// listener rebuilds the public listener; nil for gateways.
	listener *listenerPart
}

// partMark is where, in the inputs and problems of the proxy being
// translated, its public listener's are, and how to build it again.
type partMark struct {
	build    func(t *translator) *listenerv3.Listener
	listener *listenerv3.Listener
	inputs   [2]int
	problems [2]int
}

// listenerPart is a proxy's public listener as Translator.reload builds
// it again when only inputs it alone read changed.
type listenerPart struct {
	build func(t *translator) *listenerv3.Listener
	index int // in Resources.Listeners
	// only are the inputs the listener read and nothing else of the
	// proxy did, sorted.
	only []input
	// problems are where its problems are in the proxy's.
	problems [2]int
}

// loadSource is how a load assignment was built: build builds it again
// from the translator's snapshot with what it was first built from (its
// resolution), and inputs are what it read. When only instances a proxy's
// load assignments read changed, Translator.reload builds those again
// instead of translating the proxy, and its other resources keep their
// pointers.
type loadSource struct {
	build  func(t *translator) *endpointv3.ClusterLoadAssignment
	inputs []input
}

// NewTranslator returns a Translator that has translated nothing yet.
func NewTranslator() *Translator {
	return &Translator{unusable: map[string]usableEndpoints{}, proxies: map[string]*proxyEntry{},
		resources: map[string]*Resources{}, problems: map[string][]error{}, readers: map[input]map[string]bool{},
		changed: map[string]struct{}{}}
}

// Translate builds every proxy's resources from the catalog, reusing
// those of proxies whose inputs did not change since the last call. Its
// cost is that of comparing the two snapshots and translating the proxies
// a change concerns; the Result's maps are copies of the Translator's.
func (x *Translator) Translate(snap *catalog.Snapshot, mesh Mesh) *Result {
	full := x.last == nil || snap.Datacenter != x.last.Datacenter || !slices.Equal(snap.DNSDomains, x.last.DNSDomains) ||
		!sameMeshButRoots(x.mesh, mesh) || !sameMeshTLS(snap.Mesh, x.last.Mesh)
	var diff catalog.Diff
	var changed map[input]bool
	var oldRoots *tlsv3.Secret // the bundle secret a roots change replaces
	if full {
		x.setMesh(mesh)
		clear(x.proxies)
		clear(x.resources)
		clear(x.problems)
		clear(x.readers)
	} else {
		diff = catalog.Compare(x.last, snap)
		changed = changedInputs(diff)
		if !bytes.Equal(x.mesh.RootsPEM, mesh.RootsPEM) {
			oldRoots = x.roots
			x.mesh.RootsPEM = bytes.Clone(mesh.RootsPEM)
			if x.roots != nil {
				x.roots = rootsSecret(x.mesh.RootsPEM)
			}
			changed[input{kind: inMeshRoots}] = true
		}
	}
	x.updateUsable(snap, changed, full)
	t := newTranslator(snap, x.mesh, x.usableOverrides())
	t.roots, t.otlp = x.roots, x.otlp
	if full {
		for id, p := range snap.Proxies {
			x.retranslate(t, id, p)
		}
	} else {
		stale := x.readersOf(changed)
		registered := map[string]bool{}
		for _, id := range diff.Proxies.Changed {
			stale[id] = true
			registered[id] = true
		}
		for id := range stale {
			p, ok := snap.Proxies[id]
			switch {
			case !ok:
				x.remove(id)
			case !registered[id] && x.onlyPartsChanged(id, changed):
				x.reload(t, id, changed)
			default:
				x.retranslate(t, id, p)
			}
		}
		if oldRoots != nil {
			x.swapRoots(oldRoots)
		}
	}
	x.last = snap

	result := &Result{Proxies: maps.Clone(x.resources), Problems: x.endpointProblems()}
	if !full {
		result.Partial = true
		result.Changed = make([]string, 0, len(x.changed))
		for id := range x.changed {
			result.Changed = append(result.Changed, id)
		}
	}
	clear(x.changed)
	for id, errs := range x.problems {
		result.Problems[id] = append(result.Problems[id], errs...)
	}
	return result
}

// setResources makes r the resources of proxy id, noting the change.
func (x *Translator) setResources(id string, r *Resources) {
	if x.resources[id] != r {
		x.resources[id] = r
		x.changed[id] = struct{}{}
	}
}

// dropResources removes the resources of proxy id, noting the change.
func (x *Translator) dropResources(id string) {
	if _, ok := x.resources[id]; ok {
		delete(x.resources, id)
		x.changed[id] = struct{}{}
	}
}

// retranslate translates one proxy again and records what it read. A nil
// registration is left out and reported.
func (x *Translator) retranslate(t *translator, id string, p *catalog.Proxy) {
	var next *proxyEntry
	if p == nil {
		next = &proxyEntry{problems: []error{fmt.Errorf("proxy %q: no registration; left out", id)}}
	} else {
		next = t.translateProxy(p)
	}
	x.index(id, x.proxies[id], next)
	x.proxies[id] = next
	if next.res != nil {
		x.setResources(id, next.res)
	} else {
		x.dropResources(id)
	}
	if len(next.problems) > 0 {
		x.problems[id] = next.problems
	} else {
		delete(x.problems, id)
	}
}

// onlyPartsChanged reports whether every changed input a proxy's last
// translation read was read for load assignments only, or by its public
// listener alone.
func (x *Translator) onlyPartsChanged(id string, changed map[input]bool) bool {
	e := x.proxies[id]
	if e == nil || e.res == nil {
		return false
	}
	for _, in := range e.inputs {
		if changed[in] && in.kind != inLoadEndpoints && (e.listener == nil || !slices.Contains(e.listener.only, in)) {
			return false
		}
	}
	return true
}

// reload builds again a proxy's load assignments and public listener
// whose inputs changed, and keeps the rest of its last translation: what
// a change of instances, or of an intention, costs a proxy whose other
// resources do not depend on it. The result is a new *Resources whose
// other slices are the previous ones.
func (x *Translator) reload(t *translator, id string, changed map[input]bool) {
	prev := x.proxies[id]
	next := *prev
	res := *prev.res
	rebuilt := false
	for i, src := range prev.loads {
		if src.build != nil && slices.ContainsFunc(src.inputs, func(in input) bool { return changed[in] }) {
			if !rebuilt {
				res.Endpoints, rebuilt = slices.Clone(prev.res.Endpoints), true
			}
			res.Endpoints[i] = src.build(t)
		}
	}
	t.inputs = t.inputs[:0] // the loads' inputs, being the same, stay indexed
	if l := prev.listener; l != nil && slices.ContainsFunc(l.only, func(in input) bool { return changed[in] }) {
		x.rebuildListener(t, &next, &res)
		rebuilt = true
	}
	if !rebuilt {
		return // what changed reached none of its parts
	}
	next.res = &res
	if !slices.Equal(prev.inputs, next.inputs) {
		x.index(id, prev, &next)
	}
	x.proxies[id] = &next
	x.setResources(id, &res)
	if len(next.problems) > 0 {
		x.problems[id] = next.problems
	} else {
		delete(x.problems, id)
	}
}

// rebuildListener builds e's public listener again into res, and
// updates e's inputs and problems with the listener's new ones.
func (x *Translator) rebuildListener(t *translator, e *proxyEntry, res *Resources) {
	l := *e.listener
	t.inputs, t.problems = t.inputs[:0], nil
	listener := l.build(t)
	res.Listeners = slices.Clone(res.Listeners)
	res.Listeners[l.index] = listener
	fixed := onlyIn(e.inputs, l.only)
	read := sortedInputs(slices.Clone(t.inputs))
	e.inputs = sortedInputs(slices.Concat(fixed, read))
	l.only = onlyIn(read, fixed)
	e.problems = slices.Concat(e.problems[:l.problems[0]], t.problems, e.problems[l.problems[1]:])
	l.problems[1] = l.problems[0] + len(t.problems)
	e.listener = &l
	t.inputs, t.problems = t.inputs[:0], nil
}

// swapRoots hands every proxy holding the old trust-bundle secret the
// new one (x.roots): a new *Resources whose other slices are the
// previous ones. The proxies that read the roots otherwise were
// translated again (inMeshRoots).
func (x *Translator) swapRoots(old *tlsv3.Secret) {
	for id, e := range x.proxies {
		if e.res == nil {
			continue
		}
		i := slices.Index(e.res.Secrets, old)
		if i < 0 {
			continue
		}
		res := *e.res
		res.Secrets = slices.Clone(e.res.Secrets)
		res.Secrets[i] = x.roots
		next := *e
		next.res = &res
		x.proxies[id] = &next
		x.setResources(id, &res)
	}
}

// remove forgets a proxy that left the catalog.
func (x *Translator) remove(id string) {
	x.index(id, x.proxies[id], nil)
	delete(x.proxies, id)
	x.dropResources(id)
	delete(x.problems, id)
}

// translateProxy translates one proxy and records what it read.
func (t *translator) translateProxy(p *catalog.Proxy) *proxyEntry {
	t.inputs, t.problems, t.part = t.inputs[:0], nil, partMark{}
	res := t.proxy(p)
	// Kept for the proxy's life: a copy of the distinct inputs only
	// (t.inputs repeats what several resources read).
	t.sorted = append(t.sorted[:0], t.inputs...)
	in := slices.Clone(sortedInputs(t.sorted))
	var loads []loadSource
	for i, cla := range res.Endpoints {
		if src, ok := t.recipes[cla]; ok {
			if loads == nil {
				loads = make([]loadSource, len(res.Endpoints))
			}
			loads[i] = src
		}
	}
	e := &proxyEntry{res: res, problems: t.problems, inputs: in, loads: loads}
	if m := t.part; m.build != nil {
		outside := slices.Concat(t.inputs[:m.inputs[0]], t.inputs[m.inputs[1]:])
		e.listener = &listenerPart{build: m.build, index: slices.Index(res.Listeners, m.listener),
			only: onlyIn(t.inputs[m.inputs[0]:m.inputs[1]], outside), problems: m.problems}
	}
	return e
}

// sortedInputs sorts inputs and drops repeats, in place.
func sortedInputs(in []input) []input {
	slices.SortFunc(in, func(a, b input) int { return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name)) })
	return slices.Compact(in)
}

// onlyIn returns the inputs of in that are not in other, sorted.
func onlyIn(in, other []input) []input {
	var out []input
	for _, i := range in {
		if !slices.Contains(other, i) {
			out = append(out, i)
		}
	}
	return sortedInputs(out)
}

// readersOf returns the IDs of the proxies that read any of inputs.
func (x *Translator) readersOf(inputs map[input]bool) map[string]bool {
	stale := map[string]bool{}
	for in := range inputs {
		for id := range x.readers[in] {
			stale[id] = true
		}
	}
	return stale
}

// index replaces, in readers, the inputs of a proxy's previous
// translation (nil if none) with those of its next (nil if it is gone).
func (x *Translator) index(id string, prev, next *proxyEntry) {
	if prev != nil {
		for _, in := range prev.inputs {
			if r := x.readers[in]; r != nil {
				delete(r, id)
				if len(r) == 0 {
					delete(x.readers, in)
				}
			}
		}
	}
	if next != nil {
		for _, in := range next.inputs {
			r := x.readers[in]
			if r == nil {
				r = map[string]bool{}
				x.readers[in] = r
			}
			r[id] = true
		}
	}
}

func (x *Translator) setMesh(mesh Mesh) {
	mesh = cloneMesh(mesh)
	x.mesh, x.roots, x.otlp = mesh, nil, nil
	if mesh.TrustDomain != "" {
		x.roots = rootsSecret(mesh.RootsPEM)
	}
	if mesh.Tracing != nil {
		x.otlp = otlpCluster(*mesh.Tracing)
	}
}

// cloneMesh copies what a Mesh points to, which the caller may reuse.
func cloneMesh(mesh Mesh) Mesh {
	mesh.RootsPEM = bytes.Clone(mesh.RootsPEM)
	mesh.TrustDomainAliases = slices.Clone(mesh.TrustDomainAliases)
	if mesh.Tracing != nil {
		tr := *mesh.Tracing
		mesh.Tracing = &tr
	}
	if p := mesh.HealthyPanicThreshold; p != nil {
		v := *p
		mesh.HealthyPanicThreshold = &v
	}
	return mesh
}

// sameMeshTLS reports whether two mesh entries set the same TLS: a change
// of it reaches every proxy's mTLS, a full translation.
func sameMeshTLS(a, b *catalog.Mesh) bool {
	tls := func(m *catalog.Mesh) [2]*catalog.TLSParams {
		if m == nil {
			return [2]*catalog.TLSParams{}
		}
		return [2]*catalog.TLSParams{m.TLSIncoming, m.TLSOutgoing}
	}
	return reflect.DeepEqual(tls(a), tls(b))
}

// sameMeshButRoots reports whether two Meshes differ at most in their
// roots, which Translate applies without translating every proxy again.
func sameMeshButRoots(a, b Mesh) bool {
	return a.TrustDomain == b.TrustDomain && slices.Equal(a.TrustDomainAliases, b.TrustDomainAliases) && a.DefaultPolicy == b.DefaultPolicy &&
		(a.Tracing == nil) == (b.Tracing == nil) && (a.Tracing == nil || *a.Tracing == *b.Tracing) &&
		(a.HealthyPanicThreshold == nil) == (b.HealthyPanicThreshold == nil) &&
		(a.HealthyPanicThreshold == nil || *a.HealthyPanicThreshold == *b.HealthyPanicThreshold)
}
