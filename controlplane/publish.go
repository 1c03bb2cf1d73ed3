package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/weft-mesh/weft/controlplane/translate"
)

// validatable is what every generated Envoy proto implements.
type validatable interface {
	types.Resource
	ValidateAll() error
}

// snapshotSink is the cache the publisher writes to (a *nodeCache).
type snapshotSink interface {
	// SetSnapshot publishes a node's snapshot, and the same resources
	// as the delta server sends them (shared with other nodes).
	SetSnapshot(ctx context.Context, node string, snap *lazySnapshot, delta *deltaState) error
	// Unpublish drops a node that left the catalog.
	Unpublish(node string)
}

// publisher validates translated resources and hands each proxy's
// snapshot to the go-control-plane cache. It is used from one goroutine.
type publisher struct {
	cache   snapshotSink
	logger  *slog.Logger
	metrics *metrics
	// published remembers, per proxy, what was last published, so an
	// unchanged proxy costs a pointer comparison and a proxy whose new
	// resources have the same content is not handed a new snapshot.
	published map[string]publishedProxy
	// failed are the proxies whose last resources were rejected before
	// publishing; each publish tries them again.
	failed map[string]bool
	// interned holds every resource published to some proxy, by type and
	// content hash, with the number of proxies whose snapshot holds it. A
	// later translation of the same content reuses the interned proto, so
	// proxies updated in different publishes still share one copy of each
	// distinct resource, and memory does not grow with churn.
	interned map[internKey]*internedResource
	// canonical is interned's reverse: the key of each interned proto, so
	// a resource published before (a proxy whose translation kept it)
	// is not validated, marshaled and hashed again.
	canonical map[types.Resource]internKey

	// secretVersions is the published Secret version per proxy, read by
	// root rotation from other goroutines.
	mu             sync.Mutex
	secretVersions map[string]string
}

// publishedProxy is the last snapshot published to one proxy.
type publishedProxy struct {
	// res is the translation it was built from; Translator hands an
	// unchanged proxy the same pointer again.
	res *translate.Resources
	// snap is what was published; its keys are the interned resources
	// it holds, by type (publishedTypes).
	snap    *lazySnapshot
	delta   *deltaState
	version string // the combined version of every type
}

// typeKeys are intern keys by type, in publishedTypes order.
type typeKeys [5][]internKey

// internedResource is the canonical proto of one content hash.
type internedResource struct {
	res validatable
	// wire is res as the delta server sends it, marshaled once for
	// every proxy that holds it (deltaCache).
	wire *discoveryv3.Resource
	refs int // proxies whose published snapshot holds it
}

func newPublisher(cache snapshotSink, logger *slog.Logger, m *metrics) *publisher {
	return &publisher{cache: cache, logger: logger, metrics: m, published: map[string]publishedProxy{}, failed: map[string]bool{},
		interned: map[internKey]*internedResource{}, canonical: map[types.Resource]internKey{}, secretVersions: map[string]string{}}
}

// publish sets a snapshot for every proxy whose resources changed and clears
// proxies that left the catalog. A proxy whose resources fail validation
// keeps its previous snapshot; the error is logged and returned joined.
// since is when the catalog change reached the control plane; ACKs of the
// published versions are timed from it.
//
// Resources are compared by pointer first: a proxy handed the *Resources
// it was last published from is skipped without validating or hashing
// anything, so a publish costs what changed, not the size of the mesh.
func (p *publisher) publish(ctx context.Context, res *translate.Result, since time.Time) (changed int, err error) {
	memo := newResourceMemo(p.interned, p.canonical)
	defer memo.dropUnreferenced()
	var failed []error
	one := func(id string, r *translate.Resources) {
		ok, err := p.publishOne(ctx, id, r, memo, since)
		if err != nil {
			failed = append(failed, err)
			p.failed[id] = true
			return
		}
		delete(p.failed, id)
		if ok {
			changed++
		}
	}
	if res.Partial {
		// Only the proxies res lists changed, and those that failed
		// before are tried again; a listed proxy not in res left.
		for _, id := range res.Changed {
			if r, ok := res.Proxies[id]; ok {
				one(id, r)
			} else {
				p.unpublish(id)
			}
		}
		for id := range p.failed {
			if r, ok := res.Proxies[id]; ok && !slices.Contains(res.Changed, id) {
				one(id, r)
			}
		}
	} else {
		inRes := 0 // published proxies in res; any other left
		for id, r := range res.Proxies {
			one(id, r)
			if _, ok := p.published[id]; ok {
				inRes++
			}
		}
		if len(p.published) > inRes || len(p.failed) > 0 {
			p.unpublishGone(res)
		}
	}
	for _, e := range failed {
		p.logger.Error("proxy configuration rejected before publishing", "error", e)
	}
	return changed, errors.Join(failed...)
}

// publishOne publishes r to proxy id, unless it is what was published
// last (the same *Resources, or the same versions). It reports whether
// the proxy was handed a new snapshot.
func (p *publisher) publishOne(ctx context.Context, id string, r *translate.Resources, memo *resourceMemo, since time.Time) (bool, error) {
	prev, ok := p.published[id]
	if ok && prev.res == r {
		return false, nil
	}
	var last *publishedProxy
	if ok {
		last = &prev
	}
	snap, version, err := buildSnapshot(r, memo, last)
	if err != nil {
		return false, fmt.Errorf("proxy %q: %w", id, err)
	}
	if ok && prev.version == version {
		prev.res = r
		p.published[id] = prev
		return false, nil
	}
	delta := p.deltaState(snap, last)
	if err := p.cache.SetSnapshot(ctx, id, snap, delta); err != nil {
		return false, fmt.Errorf("proxy %q: set snapshot: %w", id, err)
	}
	for i, keys := range snap.keys {
		if !ok || !sameSlice(keys, prev.snap.keys[i]) {
			p.acquire(keys)
			if ok {
				p.release(prev.snap.keys[i])
			}
		}
	}
	p.published[id] = publishedProxy{res: r, snap: snap, delta: delta, version: version}
	p.setSecretVersion(id, snap.version(resource.SecretType))
	for i, typ := range publishedTypes {
		// A type whose version is what the proxy was handed before
		// sends nothing for its ACK to be timed by.
		if !ok || prev.snap.versions[i] != snap.versions[i] {
			p.metrics.published(id, typ, snap.versions[i], since)
		}
	}
	return true, nil
}

// deltaState is snap's resources as the delta server sends them: the
// interned wire form of each, sorted by name. A type whose resources are
// last's keeps last's list.
func (p *publisher) deltaState(snap *lazySnapshot, last *publishedProxy) *deltaState {
	d := &deltaState{}
	keys := snap.keys
	for i, rt := range publishedResponseTypes {
		d.versions[rt] = snap.versions[i]
		if last != nil && last.delta != nil && sameSlice(keys[i], last.snap.keys[i]) {
			d.resources[rt] = last.delta.resources[rt]
			continue
		}
		wire := make([]*discoveryv3.Resource, len(keys[i]))
		for j, k := range keys[i] {
			wire[j] = p.interned[k].wire
		}
		byName := func(a, b *discoveryv3.Resource) int { return strings.Compare(a.Name, b.Name) }
		if !slices.IsSortedFunc(wire, byName) {
			slices.SortFunc(wire, byName)
		}
		d.resources[rt] = wire
	}
	return d
}

// unpublishGone clears the proxies that are not in res any more.
func (p *publisher) unpublishGone(res *translate.Result) {
	for id := range p.published {
		if _, ok := res.Proxies[id]; !ok {
			p.unpublish(id)
		}
	}
	for id := range p.failed {
		if _, ok := res.Proxies[id]; !ok {
			delete(p.failed, id)
		}
	}
}

// unpublish clears a proxy that left the catalog.
func (p *publisher) unpublish(id string) {
	delete(p.failed, id)
	prev, ok := p.published[id]
	if !ok {
		return
	}
	p.cache.Unpublish(id)
	for _, k := range prev.snap.keys {
		p.release(k)
	}
	delete(p.published, id)
	p.setSecretVersion(id, "")
	p.metrics.forget(id)
}

// acquire counts a new holder of each interned resource.
func (p *publisher) acquire(keys []internKey) {
	for _, k := range keys {
		p.interned[k].refs++
	}
}

// release uncounts a holder of each interned resource, dropping those
// no published snapshot holds any more.
func (p *publisher) release(keys []internKey) {
	for _, k := range keys {
		e := p.interned[k]
		e.refs--
		if e.refs == 0 {
			delete(p.interned, k)
			delete(p.canonical, e.res)
		}
	}
}

func (p *publisher) setSecretVersion(id, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v == "" {
		delete(p.secretVersions, id)
		return
	}
	p.secretVersions[id] = v
}

// secretVersion is the trust-bundle version last published to a proxy.
func (p *publisher) secretVersion(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.secretVersions[id]
}

var publishedTypes = []string{resource.ListenerType, resource.ClusterType, resource.EndpointType, resource.RouteType, resource.SecretType}

// publishedResponseTypes are publishedTypes as the delta cache indexes them.
var publishedResponseTypes = func() (rts [5]types.ResponseType) {
	for i, typ := range publishedTypes {
		rts[i] = cachev3.GetResponseType(typ)
	}
	return rts
}()

// buildSnapshot validates a proxy's resources and assembles a consistent
// snapshot whose per-type versions are content hashes, so identical catalog
// state yields identical versions on every control-plane replica, with the
// interned resources it holds, by type, and the combined version.
//
// last, when not nil, is what was published to the proxy before: a type
// whose resources are the protos it was built from keeps its versions,
// items and keys, and if r differs from it in the contents of load
// assignments or secrets only (Translator.reload and swapRoots), r is
// consistent as it was, and go-control-plane's check, which unpacks
// every listener, is skipped. An endpoint change then costs its load
// assignments, not the proxy.
func buildSnapshot(r *translate.Resources, memo *resourceMemo, last *publishedProxy) (*lazySnapshot, string, error) {
	snap := &lazySnapshot{}
	var prev *translate.Resources
	if last != nil {
		prev = last.res
	}
	err := errors.Join(
		buildType(snap, 0, r.Listeners, prevOf(prev, func(p *translate.Resources) []*listenerv3.Listener { return p.Listeners }), memo, last),
		buildType(snap, 1, r.Clusters, prevOf(prev, func(p *translate.Resources) []*clusterv3.Cluster { return p.Clusters }), memo, last),
		buildType(snap, 2, r.Endpoints, prevOf(prev, func(p *translate.Resources) []*endpointv3.ClusterLoadAssignment { return p.Endpoints }), memo, last),
		buildType(snap, 3, r.Routes, prevOf(prev, func(p *translate.Resources) []*routev3.RouteConfiguration { return p.Routes }), memo, last),
		buildType(snap, 4, r.Secrets, prevOf(prev, func(p *translate.Resources) []*tlsv3.Secret { return p.Secrets }), memo, last),
	)
	if err != nil {
		return nil, "", err
	}
	combined := make([]byte, 0, 16*len(snap.versions)) // versionOf's are 16 bytes
	for _, v := range snap.versions {
		combined = append(combined, v...)
	}
	sum := sha256.Sum256(combined)
	version := hex.EncodeToString(sum[:])
	if last != nil && sameReferences(last.res, r) {
		return snap, version, nil
	}
	// go-control-plane's check needs its snapshot's resource maps: built
	// for the check only, when the references may have changed.
	if err := snap.build(false).Consistent(); err != nil {
		return nil, "", fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, version, nil
}

// publishable is a generated Envoy proto, by pointer.
type publishable interface {
	validatable
	comparable
}

// buildType fills in type i (publishedTypes order) of snap from items:
// what last published when items are the protos it was built from (prev),
// else their version, canonical protos and intern keys. It returns the
// first resource that fails validation.
func buildType[T publishable](snap *lazySnapshot, i int, items, prev []T, memo *resourceMemo, last *publishedProxy) error {
	if last != nil && slices.Equal(items, prev) {
		// Held by last: not acquired again (publish).
		snap.versions[i], snap.items[i], snap.keys[i] = last.snap.versions[i], last.snap.items[i], last.snap.keys[i]
		return nil
	}
	version, canonical, err := versionOf(memo, items, &snap.keys[i])
	if err != nil {
		return err
	}
	snap.versions[i], snap.items[i] = version, canonical
	return nil
}

// prevOf is one type's resources of the last translation published, nil
// without one.
func prevOf[T any](prev *translate.Resources, get func(*translate.Resources) []T) []T {
	if prev == nil {
		return nil
	}
	return get(prev)
}

// sameSlice reports whether a and b are the same slice.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// sameReferences reports whether b holds a's listeners, clusters and
// routes (the same protos), and load assignments and secrets of the same
// names: the references go-control-plane's consistency check follows
// are then a's.
func sameReferences(a, b *translate.Resources) bool {
	return slices.Equal(a.Listeners, b.Listeners) && slices.Equal(a.Clusters, b.Clusters) && slices.Equal(a.Routes, b.Routes) &&
		slices.EqualFunc(a.Endpoints, b.Endpoints, func(x, y *endpointv3.ClusterLoadAssignment) bool { return x.ClusterName == y.ClusterName }) &&
		slices.EqualFunc(a.Secrets, b.Secrets, func(x, y *tlsv3.Secret) bool { return x.Name == y.Name })
}
