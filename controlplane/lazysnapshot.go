package controlplane

import (
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// lazySnapshot is what the publisher published to one proxy: each type's
// version, canonical resources (sorted by name) and intern keys, in
// publishedTypes order. go-control-plane's snapshot of them — a map of
// resources and one of versions per type — is built only when a client
// served by go-control-plane's caches needs it (a SotW stream, a
// proxyless client, the config dump): sidecars on delta streams are
// served from the delta cache's shared wire form and never need it, and
// at 10,000 sidecars those maps were 50 MB of heap and a sixth of the
// publisher's CPU in a fan-out.
//
// The published fields are not changed after publish hands it on;
// snapshot may be called from any goroutine.
type lazySnapshot struct {
	versions [len(typeKeys{})]string
	items    [len(typeKeys{})][]types.Resource
	keys     typeKeys

	once  sync.Once
	built *cachev3.Snapshot
}

// version is the version of one type (a publishedTypes URL); "" for any
// other.
func (l *lazySnapshot) version(typeURL string) string {
	for i, t := range publishedTypes {
		if t == typeURL {
			return l.versions[i]
		}
	}
	return ""
}

// snapshot is go-control-plane's snapshot of l, built on the first call.
// Its per-resource versions are the content hashes the delta cache sends.
func (l *lazySnapshot) snapshot() *cachev3.Snapshot {
	l.once.Do(func() { l.built = l.build(true) })
	return l.built
}

// build makes go-control-plane's snapshot of l: its resource maps, and
// with versions its per-resource version maps too.
func (l *lazySnapshot) build(versions bool) *cachev3.Snapshot {
	s := &cachev3.Snapshot{}
	if versions {
		s.VersionMap = make(map[string]map[string]string, len(publishedTypes))
	}
	for i, typeURL := range publishedTypes {
		s.Resources[cachev3.GetResponseType(typeURL)] = cachev3.NewResources(l.versions[i], l.items[i])
		if !versions {
			continue
		}
		hashes := make(map[string]string, len(l.items[i]))
		for j, r := range l.items[i] {
			hashes[cachev3.GetResourceName(r)] = l.keys[i][j].hash
		}
		s.VersionMap[typeURL] = hashes
	}
	return s
}
