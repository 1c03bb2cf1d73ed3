package controlplane

import (
	"context"
	"slices"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
)

// nodeCache serves every node from go-control-plane snapshot caches, one
// per kind of client, and keeps per-node state exactly as long as needed.
//
// Sidecars subscribe to every resource (wildcard) and are served from a
// cache in ADS mode, which holds a response back until the request names
// every resource of its type in the snapshot: a sidecar's configuration
// stays consistent across types. A proxyless gRPC client subscribes to
// the names it dials; in ADS mode the cache would never answer it, so it
// is served from a cache that answers each request with the named
// resources the snapshot has. Sidecars' delta watches are served by
// deltaCache, with the same semantics as the ADS-mode cache but resources
// marshaled once for every node. A watch goes to the cache of its node's
// kind, read from the node metadata on the request (isProxyless). Every
// snapshot is set in every cache — a cache with no watch of a node only
// stores it — so the publisher need not know a node's kind and a node's
// watches always find its snapshot.
//
// The caches keep a status entry for every node that ever opened a watch
// and free it only on ClearSnapshot (go-control-plane issue 597), and
// ClearSnapshot on a node with open watches orphans them: the node would
// miss every later update. nodeCache therefore counts each node's open
// watches and clears a node once it is neither published (in the catalog)
// nor watched: when the last watch of an unpublished node is cancelled, or
// when a node with no open watch is unpublished. A node that leaves the
// catalog while connected keeps its last snapshot until its streams end.
//
// SetSnapshot and Unpublish are called from the publish goroutine; the
// watch methods from stream goroutines.
type nodeCache struct {
	sidecars  cachev3.SnapshotCache // ADS mode
	proxyless cachev3.SnapshotCache // answers named subscriptions
	// delta serves sidecars' delta watches from resources marshaled once
	// for every node that holds them; sidecars' SotW watches stay on
	// sidecars.
	delta *deltaCache

	mu        sync.Mutex
	watches   map[string]int  // open watches by node ID
	published map[string]bool // nodes with a current snapshot
}

var _ cachev3.Cache = (*nodeCache)(nil)

// newNodeCache builds the two caches; logger may be nil.
func newNodeCache(logger log.Logger) *nodeCache {
	return &nodeCache{
		sidecars:  cachev3.NewSnapshotCache(true, cachev3.IDHash{}, logger),
		proxyless: cachev3.NewSnapshotCache(false, cachev3.IDHash{}, logger),
		delta:     newDeltaCache(),
		watches:   map[string]int{},
		published: map[string]bool{},
	}
}

// cacheFor is the cache that serves node's watches.
func (n *nodeCache) cacheFor(node *corev3.Node) cachev3.SnapshotCache {
	if isProxyless(node) {
		return n.proxyless
	}
	return n.sidecars
}

// SetSnapshot publishes a node's snapshot to the three caches; delta is
// the same resources as the delta server sends them.
func (n *nodeCache) SetSnapshot(ctx context.Context, node string, snap cachev3.ResourceSnapshot, delta *deltaState) error {
	n.mu.Lock()
	n.published[node] = true
	n.mu.Unlock()
	if err := n.sidecars.SetSnapshot(ctx, node, snap); err != nil {
		return err
	}
	n.delta.set(ctx, node, delta)
	return n.proxyless.SetSnapshot(ctx, node, snap)
}

// GetSnapshot returns the node's published snapshot.
func (n *nodeCache) GetSnapshot(node string) (cachev3.ResourceSnapshot, error) {
	return n.sidecars.GetSnapshot(node)
}

// Unpublish marks a node as gone from the catalog and clears it from the
// caches unless it still has open watches.
func (n *nodeCache) Unpublish(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.published, node)
	if n.watches[node] == 0 {
		n.clear(node)
	}
}

// CreateWatch counts the watch while it is open.
func (n *nodeCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	node := req.GetNode().GetId()
	n.opened(node)
	cancel, err := n.cacheFor(req.GetNode()).CreateWatch(req, sub, ch)
	return n.tracked(node, cancel), err
}

// CreateDeltaWatch counts the watch while it is open. A proxyless client
// is told at once which of the names it subscribes to do not exist
// (announceAbsent).
func (n *nodeCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	node := req.GetNode().GetId()
	n.opened(node)
	if !isProxyless(req.GetNode()) {
		cancel, err := n.delta.CreateDeltaWatch(req, sub, ch)
		return n.tracked(node, cancel), err
	}
	_, err := n.proxyless.GetSnapshot(node)
	sub = announceAbsent(req, sub, err == nil)
	cancel, err := n.proxyless.CreateDeltaWatch(req, sub, ch)
	return n.tracked(node, cancel), err
}

// Fetch answers a REST request from the cache of the node's kind.
func (n *nodeCache) Fetch(ctx context.Context, req *cachev3.Request) (cachev3.Response, error) {
	return n.cacheFor(req.GetNode()).Fetch(ctx, req)
}

// opened counts a watch before it is created, so that the node cannot be
// cleared while the cache registers it.
func (n *nodeCache) opened(node string) {
	n.mu.Lock()
	n.watches[node]++
	n.mu.Unlock()
}

// tracked returns a cancel func that also uncounts the watch; with no
// cancel (the cache answered at once, or failed) it uncounts it now.
func (n *nodeCache) tracked(node string, cancel func()) func() {
	if cancel == nil {
		n.closed(node, nil)
		return nil
	}
	var once sync.Once
	return func() { once.Do(func() { n.closed(node, cancel) }) }
}

func (n *nodeCache) closed(node string, cancel func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	n.watches[node]--
	if n.watches[node] > 0 {
		return
	}
	delete(n.watches, node)
	if !n.published[node] {
		n.clear(node)
	}
}

// clear drops a node from the caches. Callers hold n.mu.
func (n *nodeCache) clear(node string) {
	n.sidecars.ClearSnapshot(node)
	n.proxyless.ClearSnapshot(node)
	n.delta.clear(node)
}

// openWatches is the number of the node's open watches in the caches, and
// whether any cache holds an entry for it; for tests.
func (n *nodeCache) openWatches(node string) (watches int, held bool) {
	for _, c := range []cachev3.SnapshotCache{n.sidecars, n.proxyless} {
		if slices.Contains(c.GetStatusKeys(), node) {
			info := c.GetStatusInfo(node)
			watches += info.GetNumWatches() + info.GetNumDeltaWatches()
			held = true
		}
	}
	if w, ok := n.delta.watchCount(node); ok {
		watches += w
		held = true
	}
	return watches, held
}

// GetStatusKeys are the nodes any cache holds an entry for; for tests.
func (n *nodeCache) GetStatusKeys() []string {
	keys := n.sidecars.GetStatusKeys()
	for _, k := range append(n.proxyless.GetStatusKeys(), n.delta.keys()...) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// counts returns how many nodes have open watches and how many are
// published, for tests and metrics.
func (n *nodeCache) counts() (watched, published int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.watches), len(n.published)
}
