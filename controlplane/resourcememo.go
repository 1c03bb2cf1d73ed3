package controlplane

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceMemo validates and hashes each distinct resource once per
// publish, however many proxies share it, and swaps in the interned proto
// when the content was published before.
type resourceMemo struct {
	seen      map[types.Resource]memoEntry
	interned  map[internKey]*internedResource
	canonical map[types.Resource]internKey // interned's reverse (publisher.canonical)
	// added are the resources interned by this publish; those no proxy
	// ended up holding are dropped at its end.
	added []internKey
	// scratch is versionOf's buffer, reused from type to type.
	scratch []byte
}

type memoEntry struct {
	key       internKey
	canonical validatable
	wire      *discoveryv3.Resource // canonical as the delta server sends it
}

// internKey identifies a resource by message type and content hash.
type internKey struct {
	typ  string
	hash string
}

func newResourceMemo(interned map[internKey]*internedResource, canonical map[types.Resource]internKey) *resourceMemo {
	return &resourceMemo{seen: map[types.Resource]memoEntry{}, interned: interned, canonical: canonical}
}

func (m *resourceMemo) resolve(r validatable) (memoEntry, error) {
	if e, ok := m.seen[r]; ok {
		// A proxy published earlier in this publish may have released
		// the last other holder.
		m.intern(e)
		return e, nil
	}
	if key, ok := m.canonical[r]; ok {
		// Published before as it is: validated and hashed then.
		return memoEntry{key: key, canonical: r}, nil
	}
	if err := r.ValidateAll(); err != nil {
		return memoEntry{}, fmt.Errorf("resource %q: %w", cachev3.GetResourceName(r), err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return memoEntry{}, fmt.Errorf("resource %q: marshal: %w", cachev3.GetResourceName(r), err)
	}
	sum := sha256.Sum256(b)
	typ := string(r.ProtoReflect().Descriptor().FullName())
	hash := hex.EncodeToString(sum[:])
	e := memoEntry{key: internKey{typ: typ, hash: hash}, canonical: r}
	if old, ok := m.interned[e.key]; ok {
		e.canonical, e.wire = old.res, old.wire
	} else {
		// Delta xDS versions are go-control-plane's: the SHA-256 of the
		// deterministic encoding, in hex (cachev3.HashResource).
		e.wire = &discoveryv3.Resource{Name: cachev3.GetResourceName(r), Version: hash,
			Resource: &anypb.Any{TypeUrl: resource.APITypePrefix + typ, Value: b}}
	}
	m.intern(e)
	m.seen[r] = e
	return e, nil
}

// intern makes e's canonical proto the interned one of its key, unless
// that key is interned already.
func (m *resourceMemo) intern(e memoEntry) {
	if _, ok := m.interned[e.key]; !ok {
		m.interned[e.key] = &internedResource{res: e.canonical, wire: e.wire}
		m.canonical[e.canonical] = e.key
		m.added = append(m.added, e.key)
	}
}

// dropUnreferenced forgets the resources this publish interned that no
// published snapshot holds (their proxy failed, or kept its version).
func (m *resourceMemo) dropUnreferenced() {
	for _, k := range m.added {
		if e := m.interned[k]; e != nil && e.refs == 0 {
			delete(m.interned, k)
			delete(m.canonical, e.res)
		}
	}
}

// versionOf validates resources (sorted by name) and returns the hash of
// their names and contents as the type's version and the canonical
// protos. It appends their intern keys to keys.
func versionOf[T validatable](m *resourceMemo, rs []T, keys *[]internKey) (string, []types.Resource, error) {
	items := make([]types.Resource, len(rs))
	if *keys == nil {
		*keys = make([]internKey, 0, len(rs))
	}
	buf := m.scratch[:0]
	for i, r := range rs {
		e, err := m.resolve(r)
		if err != nil {
			return "", nil, err
		}
		buf = append(buf, cachev3.GetResourceName(r)...)
		buf = append(buf, 0)
		buf = append(buf, e.key.hash...)
		items[i] = e.canonical
		*keys = append(*keys, e.key)
	}
	m.scratch = buf
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8]), items, nil
}
