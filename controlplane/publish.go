package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/controlplane/translate"
)

// validatable is what every generated Envoy proto implements.
type validatable interface {
	types.Resource
	ValidateAll() error
}

// snapshotSink is the cache the publisher writes to (a *nodeCache).
type snapshotSink interface {
	SetSnapshot(ctx context.Context, node string, snap cachev3.ResourceSnapshot) error
	// Unpublish drops a node that left the catalog.
	Unpublish(node string)
}

// publisher validates translated resources and hands each proxy's
// snapshot to the go-control-plane cache. It is used from one goroutine.
type publisher struct {
	cache   snapshotSink
	logger  *slog.Logger
	metrics *metrics
	// versions remembers the combined version last published per proxy, so
	// an unchanged proxy is not handed a new snapshot.
	versions map[string]string
	// interned holds every resource of the last publish by type and content
	// hash. A later translation of the same content reuses the interned
	// proto, so proxies updated in different publishes still share one
	// copy of each distinct resource and memory does not grow with churn.
	interned map[internKey]validatable

	// secretVersions is the published Secret version per proxy, read by
	// root rotation from other goroutines.
	mu             sync.Mutex
	secretVersions map[string]string
}

func newPublisher(cache snapshotSink, logger *slog.Logger, m *metrics) *publisher {
	return &publisher{cache: cache, logger: logger, metrics: m, versions: map[string]string{}, secretVersions: map[string]string{}}
}

// publish sets a snapshot for every proxy whose resources changed and clears
// proxies that left the catalog. A proxy whose resources fail validation
// keeps its previous snapshot; the error is logged and returned joined.
// since is when the catalog change reached the control plane; ACKs of the
// published versions are timed from it.
func (p *publisher) publish(ctx context.Context, res *translate.Result, since time.Time) (changed int, err error) {
	memo := newResourceMemo(p.interned)
	defer func() { p.interned = memo.next }()
	var failed []error
	for id, r := range res.Proxies {
		snap, version, verr := buildSnapshot(r, memo)
		if verr != nil {
			failed = append(failed, fmt.Errorf("proxy %q: %w", id, verr))
			continue
		}
		if p.versions[id] == version {
			continue
		}
		if serr := p.cache.SetSnapshot(ctx, id, snap); serr != nil {
			failed = append(failed, fmt.Errorf("proxy %q: set snapshot: %w", id, serr))
			continue
		}
		p.versions[id] = version
		p.setSecretVersion(id, snap.GetVersion(resource.SecretType))
		for _, typ := range publishedTypes {
			p.metrics.published(id, typ, snap.GetVersion(typ), since)
		}
		changed++
	}
	for id := range p.versions {
		if _, ok := res.Proxies[id]; !ok {
			p.cache.Unpublish(id)
			delete(p.versions, id)
			p.setSecretVersion(id, "")
			p.metrics.forget(id)
		}
	}
	for _, e := range failed {
		p.logger.Error("proxy configuration rejected before publishing", "error", e)
	}
	return changed, errors.Join(failed...)
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

// buildSnapshot validates a proxy's resources and assembles a consistent
// snapshot whose per-type versions are content hashes, so identical catalog
// state yields identical versions on every control-plane replica.
func buildSnapshot(r *translate.Resources, memo *resourceMemo) (*cachev3.Snapshot, string, error) {
	snap := &cachev3.Snapshot{}
	versionMap := make(map[string]map[string]string, 5)
	combined := sha256.New()
	for _, set := range []struct {
		typ   types.ResponseType
		items []validatable
	}{
		{types.Listener, asValidatable(r.Listeners)},
		{types.Cluster, asValidatable(r.Clusters)},
		{types.Endpoint, asValidatable(r.Endpoints)},
		{types.Route, asValidatable(r.Routes)},
		{types.Secret, asValidatable(r.Secrets)},
	} {
		version, items, hashes, err := memo.versionOf(set.items)
		if err != nil {
			return nil, "", err
		}
		snap.Resources[set.typ] = cachev3.NewResources(version, items)
		typeURL, _ := cachev3.GetResponseTypeURL(set.typ)
		versionMap[typeURL] = hashes
		combined.Write([]byte(version))
	}
	// Delta xDS compares resources by these hashes; filling them in spares
	// the cache marshaling every resource of every proxy again.
	snap.VersionMap = versionMap
	if err := snap.Consistent(); err != nil {
		return nil, "", fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, hex.EncodeToString(combined.Sum(nil)), nil
}

func asValidatable[T validatable](in []T) []validatable {
	out := make([]validatable, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// resourceMemo validates and hashes each distinct resource once per
// publish, however many proxies share it, and swaps in the interned proto
// of the previous publish when the content is unchanged.
type resourceMemo struct {
	seen map[types.Resource]memoEntry
	prev map[internKey]validatable
	next map[internKey]validatable
}

type memoEntry struct {
	hash      string
	canonical validatable
}

// internKey identifies a resource by message type and content hash.
type internKey struct {
	typ  string
	hash string
}

func newResourceMemo(prev map[internKey]validatable) *resourceMemo {
	return &resourceMemo{seen: map[types.Resource]memoEntry{}, prev: prev, next: make(map[internKey]validatable, len(prev))}
}

func (m *resourceMemo) resolve(r validatable) (memoEntry, error) {
	if e, ok := m.seen[r]; ok {
		return e, nil
	}
	if err := r.ValidateAll(); err != nil {
		return memoEntry{}, fmt.Errorf("resource %q: %w", cachev3.GetResourceName(r), err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return memoEntry{}, fmt.Errorf("resource %q: marshal: %w", cachev3.GetResourceName(r), err)
	}
	sum := sha256.Sum256(b)
	e := memoEntry{hash: hex.EncodeToString(sum[:]), canonical: r}
	key := internKey{typ: string(r.ProtoReflect().Descriptor().FullName()), hash: e.hash}
	if old, ok := m.next[key]; ok {
		e.canonical = old
	} else if old, ok := m.prev[key]; ok {
		e.canonical = old
	}
	m.next[key] = e.canonical
	m.seen[r] = e
	return e, nil
}

// versionOf validates resources (sorted by name) and returns the hash of
// their names and contents as the type's version, the canonical protos, and
// each resource's content hash by name.
func (m *resourceMemo) versionOf(rs []validatable) (string, []types.Resource, map[string]string, error) {
	sum := sha256.New()
	items := make([]types.Resource, len(rs))
	hashes := make(map[string]string, len(rs))
	for i, r := range rs {
		e, err := m.resolve(r)
		if err != nil {
			return "", nil, nil, err
		}
		name := cachev3.GetResourceName(r)
		sum.Write([]byte(name))
		sum.Write([]byte{0})
		sum.Write([]byte(e.hash))
		items[i] = e.canonical
		hashes[name] = e.hash
	}
	return hex.EncodeToString(sum.Sum(nil))[:16], items, hashes, nil
}
