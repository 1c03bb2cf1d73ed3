package controlplane

import (
	"context"
	"fmt"
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
// kind, read from the node metadata on the request (isProxyless), so the
// publisher need not know a node's kind. Every snapshot is set in the delta
// cache. go-control-plane's caches are given a node's snapshot, built then
// from the lazySnapshot, only while they hold a watch of the node, and
// before one is created or a REST request answered (syncGCP): a node's
// watches always find its latest snapshot, and the sidecars on delta
// streams, which go-control-plane's caches never serve, cost neither the
// snapshot's maps nor the caches' work.
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

	// gcpMu serializes syncGCP, so that an older snapshot never replaces
	// a newer one in go-control-plane's caches.
	gcpMu sync.Mutex

	mu         sync.Mutex
	watches    map[string]int  // open watches by node ID
	gcpWatches map[string]int  // of those, the ones in go-control-plane's caches
	published  map[string]bool // nodes with a current snapshot
	// latest is the snapshot last published to each node, kept as long
	// as the node is (see clear); inGCP is the one go-control-plane's
	// caches hold.
	latest map[string]*lazySnapshot
	inGCP  map[string]*lazySnapshot
}

var _ cachev3.Cache = (*nodeCache)(nil)

// newNodeCache builds the two caches; logger may be nil.
func newNodeCache(logger log.Logger) *nodeCache {
	return &nodeCache{
		sidecars:   cachev3.NewSnapshotCache(true, cachev3.IDHash{}, logger),
		proxyless:  cachev3.NewSnapshotCache(false, cachev3.IDHash{}, logger),
		delta:      newDeltaCache(),
		watches:    map[string]int{},
		gcpWatches: map[string]int{},
		published:  map[string]bool{},
		latest:     map[string]*lazySnapshot{},
		inGCP:      map[string]*lazySnapshot{},
	}
}

// cacheFor is the cache that serves node's watches.
func (n *nodeCache) cacheFor(node *corev3.Node) cachev3.SnapshotCache {
	if isProxyless(node) {
		return n.proxyless
	}
	return n.sidecars
}

// SetSnapshot publishes a node's snapshot: to the delta cache, where delta
// is the same resources as the delta server sends them, and to
// go-control-plane's caches if they hold a watch of the node.
func (n *nodeCache) SetSnapshot(ctx context.Context, node string, snap *lazySnapshot, delta *deltaState) error {
	n.mu.Lock()
	n.published[node] = true
	n.latest[node] = snap
	watched := n.gcpWatches[node] > 0
	n.mu.Unlock()
	n.delta.set(ctx, node, delta)
	if !watched {
		return nil
	}
	return n.syncGCP(ctx, node)
}

// syncGCP sets the node's latest snapshot in go-control-plane's caches
// unless they hold it already.
func (n *nodeCache) syncGCP(ctx context.Context, node string) error {
	n.gcpMu.Lock()
	defer n.gcpMu.Unlock()
	n.mu.Lock()
	snap, held := n.latest[node], n.inGCP[node]
	n.mu.Unlock()
	if snap == nil || snap == held {
		return nil
	}
	s := snap.snapshot()
	if err := n.sidecars.SetSnapshot(ctx, node, s); err != nil {
		return err
	}
	if err := n.proxyless.SetSnapshot(ctx, node, s); err != nil {
		return err
	}
	n.mu.Lock()
	n.inGCP[node] = snap
	n.mu.Unlock()
	return nil
}

// GetSnapshot returns the node's published snapshot.
func (n *nodeCache) GetSnapshot(node string) (cachev3.ResourceSnapshot, error) {
	n.mu.Lock()
	snap := n.latest[node]
	n.mu.Unlock()
	if snap == nil {
		return nil, fmt.Errorf("no snapshot found for node %s", node)
	}
	return snap.snapshot(), nil
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
	n.opened(node, true)
	if err := n.syncGCP(context.Background(), node); err != nil {
		n.closed(node, true, nil)
		return nil, err
	}
	cancel, err := n.cacheFor(req.GetNode()).CreateWatch(req, sub, ch)
	return n.tracked(node, true, cancel), err
}

// CreateDeltaWatch counts the watch while it is open. A proxyless client
// is told at once which of the names it subscribes to do not exist
// (announceAbsent). deltaServer opens its watches through watchDelta,
// which calls this for proxyless clients; the sidecar branch serves the
// cache.ConfigWatcher interface and the tests that hold the caches to
// go-control-plane's.
func (n *nodeCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	node := req.GetNode().GetId()
	if !isProxyless(req.GetNode()) {
		n.opened(node, false)
		cancel, err := n.delta.CreateDeltaWatch(req, sub, ch)
		return n.tracked(node, false, cancel), err
	}
	n.opened(node, true)
	if err := n.syncGCP(context.Background(), node); err != nil {
		n.closed(node, true, nil)
		return nil, err
	}
	_, err := n.proxyless.GetSnapshot(node)
	sub = announceAbsent(req, sub, err == nil)
	cancel, err := n.proxyless.CreateDeltaWatch(req, sub, ch)
	return n.tracked(node, true, cancel), err
}

// watchDelta opens a delta watch for deltaServer: deliver gets its one
// response, with a cache's locks held (it must not block), from this
// goroutine when the cache answers at once or from the publisher's
// later. A sidecar's watch is deltaCache's; a proxyless client's is
// go-control-plane's cache's, which answers on a channel that a goroutine
// forwards from while the watch is open (proxyless clients are few).
func (n *nodeCache) watchDelta(req *cachev3.DeltaRequest, sub cachev3.Subscription, deliver func(cachev3.DeltaResponse)) (func(), error) {
	node := req.GetNode().GetId()
	if !isProxyless(req.GetNode()) {
		n.opened(node, false)
		return n.tracked(node, false, n.delta.watch(req, sub, deliver)), nil
	}
	ch := make(chan cachev3.DeltaResponse, 1)
	cancel, err := n.CreateDeltaWatch(req, sub, ch)
	if err != nil {
		return nil, err
	}
	if cancel == nil { // answered at once
		select {
		case resp := <-ch:
			deliver(resp)
		default:
		}
		return nil, nil
	}
	stop := make(chan struct{})
	go func() {
		select {
		case resp := <-ch:
			deliver(resp)
		case <-stop:
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); close(stop) }) }, nil
}

// Fetch answers a REST request from the cache of the node's kind.
func (n *nodeCache) Fetch(ctx context.Context, req *cachev3.Request) (cachev3.Response, error) {
	if err := n.syncGCP(ctx, req.GetNode().GetId()); err != nil {
		return nil, err
	}
	return n.cacheFor(req.GetNode()).Fetch(ctx, req)
}

// opened counts a watch before it is created, so that the node cannot be
// cleared while the cache registers it; gcp: a watch in go-control-plane's
// caches, which are then kept in sync with the node's snapshots.
func (n *nodeCache) opened(node string, gcp bool) {
	n.mu.Lock()
	n.watches[node]++
	if gcp {
		n.gcpWatches[node]++
	}
	n.mu.Unlock()
}

// tracked returns a cancel func that also uncounts the watch; with no
// cancel (the cache answered at once, or failed) it uncounts it now.
func (n *nodeCache) tracked(node string, gcp bool, cancel func()) func() {
	if cancel == nil {
		n.closed(node, gcp, nil)
		return nil
	}
	var once sync.Once
	return func() { once.Do(func() { n.closed(node, gcp, cancel) }) }
}

func (n *nodeCache) closed(node string, gcp bool, cancel func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if gcp {
		if n.gcpWatches[node]--; n.gcpWatches[node] == 0 {
			delete(n.gcpWatches, node)
		}
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
	delete(n.latest, node)
	delete(n.inGCP, node)
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
