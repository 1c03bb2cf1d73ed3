package controlplane

import (
	"context"
	"sync"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// nodeCache wraps go-control-plane's snapshot cache so that per-node state
// lives exactly as long as it is needed. The cache keeps a status entry
// for every node that ever opened a watch and frees it only on
// ClearSnapshot (go-control-plane issue 597), and ClearSnapshot on a node
// with open watches orphans them: the node would miss every later update.
//
// nodeCache therefore counts each node's open watches and clears a node
// once it is neither published (in the catalog) nor watched: when the last
// watch of an unpublished node is cancelled, or when a node with no open
// watch is unpublished. A node that leaves the catalog while connected keeps
// its last snapshot until its streams end.
//
// SetSnapshot and Unpublish are called from the publish goroutine; the
// watch methods from stream goroutines.
type nodeCache struct {
	cachev3.SnapshotCache

	mu        sync.Mutex
	watches   map[string]int  // open watches by node ID
	published map[string]bool // nodes with a current snapshot
}

var _ cachev3.Cache = (*nodeCache)(nil)

func newNodeCache(c cachev3.SnapshotCache) *nodeCache {
	return &nodeCache{SnapshotCache: c, watches: map[string]int{}, published: map[string]bool{}}
}

// SetSnapshot publishes a node's snapshot.
func (n *nodeCache) SetSnapshot(ctx context.Context, node string, snap cachev3.ResourceSnapshot) error {
	n.mu.Lock()
	n.published[node] = true
	n.mu.Unlock()
	return n.SnapshotCache.SetSnapshot(ctx, node, snap)
}

// Unpublish marks a node as gone from the catalog and clears it from the
// cache unless it still has open watches.
func (n *nodeCache) Unpublish(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.published, node)
	if n.watches[node] == 0 {
		n.SnapshotCache.ClearSnapshot(node)
	}
}

// CreateWatch counts the watch while it is open.
func (n *nodeCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	node := req.GetNode().GetId()
	n.opened(node)
	cancel, err := n.SnapshotCache.CreateWatch(req, sub, ch)
	return n.tracked(node, cancel), err
}

// CreateDeltaWatch counts the watch while it is open.
func (n *nodeCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	node := req.GetNode().GetId()
	n.opened(node)
	cancel, err := n.SnapshotCache.CreateDeltaWatch(req, sub, ch)
	return n.tracked(node, cancel), err
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
		n.SnapshotCache.ClearSnapshot(node)
	}
}

// counts returns how many nodes have open watches and how many are
// published, for tests and metrics.
func (n *nodeCache) counts() (watched, published int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.watches), len(n.published)
}
