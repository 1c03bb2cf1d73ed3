package controlplane

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// deltaCache serves sidecars' delta xDS watches from resources marshaled
// once per distinct resource, however many sidecars hold them.
//
// go-control-plane's snapshot cache builds, for every node and response,
// a wrapper of each resource it sends, which marshals and hashes it again,
// and a map of every resource's version; a change that all 10,000
// sidecars of a mesh need (an auth service's endpoints, a trust bundle)
// was marshaled 10,000 times. Here the publisher hands each node its
// resources as *discoveryv3.Resource values built once per distinct
// resource (publisher.interned), and a response only picks the ones whose
// version differs from what the subscription returned last: nothing is
// marshaled or hashed per node, and a node costs its own lists of
// pointers.
//
// The semantics are go-control-plane's delta snapshot cache in ADS mode:
// a wildcard subscription gets every resource of its type, a named one
// the names it subscribes to; a resource is sent when its version differs
// from the one last returned, and listed as removed when it was returned
// and is gone; the first request of a wildcard subscription is answered
// even when there is nothing to send; a watch that has nothing to send
// waits for the node's next state; and a new state answers a node's open
// watches in ADS order (clusters, endpoints, listeners, routes, secrets).
//
// set is called from the publish goroutine, the watch methods from the
// streams' goroutines.
type deltaCache struct {
	mu     sync.RWMutex
	nodes  map[string]*deltaNode
	nextID atomic.Int64
}

// deltaState is one node's published configuration as the delta server
// sends it: by type, the type's version and its resources sorted by name.
// The resources are shared with other nodes and never modified.
type deltaState struct {
	versions  [types.UnknownType]string
	resources [types.UnknownType][]*discoveryv3.Resource
}

// deltaNode is one node's state and open watches.
type deltaNode struct {
	mu      sync.Mutex
	state   *deltaState // nil until published
	watches map[int64]deltaWatch
}

type deltaWatch struct {
	req *cachev3.DeltaRequest
	typ types.ResponseType // of req's type URL
	sub cachev3.Subscription
	// deliver gets the watch's one response. It is called with the
	// node's lock held and must not block.
	deliver func(cachev3.DeltaResponse)
}

func newDeltaCache() *deltaCache {
	return &deltaCache{nodes: map[string]*deltaNode{}}
}

// node returns the node's entry, creating it.
func (c *deltaCache) node(id string) *deltaNode {
	c.mu.RLock()
	n := c.nodes[id]
	c.mu.RUnlock()
	if n != nil {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n = c.nodes[id]; n == nil {
		n = &deltaNode{watches: map[int64]deltaWatch{}}
		c.nodes[id] = n
	}
	return n
}

// set publishes a node's state and answers its open watches that have
// something to send, in ADS order.
func (c *deltaCache) set(ctx context.Context, id string, s *deltaState) {
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.state
	n.state = s
	if len(n.watches) == 0 {
		return
	}
	// Every open watch has been matched against old (when it was opened,
	// or at the last set) and had nothing to send: a type whose resources
	// are old's, the same slice, has nothing to send still.
	type due struct {
		id  int64
		typ types.ResponseType
	}
	var buf [types.UnknownType + 1]due // a stream watches each type once
	ids := buf[:0]
	for wid, w := range n.watches {
		if old != nil && w.typ != types.UnknownType && sameSlice(old.resources[w.typ], s.resources[w.typ]) {
			continue
		}
		ids = append(ids, due{wid, w.typ})
	}
	slices.SortFunc(ids, func(a, b due) int { return int(a.typ) - int(b.typ) })
	for _, d := range ids {
		w := n.watches[d.id]
		if resp := respondDelta(ctx, s, w.req, w.sub); resp != nil {
			delete(n.watches, d.id)
			w.deliver(resp)
		}
	}
}

// clear forgets a node; the caller knows it has no open watch.
func (c *deltaCache) clear(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, id)
}

// keys are the nodes held, for tests.
func (c *deltaCache) keys() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Collect(maps.Keys(c.nodes))
}

// watchCount is the number of the node's open watches, and whether the
// node is held; for tests.
func (c *deltaCache) watchCount(id string) (int, bool) {
	c.mu.RLock()
	n := c.nodes[id]
	c.mu.RUnlock()
	if n == nil {
		return 0, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.watches), true
}

// watch answers at once when the node's state has something to send the
// subscription; otherwise it keeps the watch until the next set answers
// it. Either way deliver gets the one response, with the node's lock
// held. It returns the watch's cancel func, nil when it answered.
func (c *deltaCache) watch(req *cachev3.DeltaRequest, sub cachev3.Subscription, deliver func(cachev3.DeltaResponse)) func() {
	id := req.GetNode().GetId()
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != nil {
		if resp := respondDelta(context.Background(), n.state, req, sub); resp != nil {
			deliver(resp)
			return nil
		}
	}
	wid := c.nextID.Add(1)
	n.watches[wid] = deltaWatch{req: req, typ: cachev3.GetResponseType(req.GetTypeUrl()), sub: sub, deliver: deliver}
	return func() {
		n.mu.Lock()
		delete(n.watches, wid)
		n.mu.Unlock()
	}
}

// CreateDeltaWatch is watch with go-control-plane's channel: the
// cache.ConfigWatcher method, through which the tests hold the cache to
// go-control-plane's. The stream's channel holds one response per type
// and a watch answers once, so the send does not block.
func (c *deltaCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	return c.watch(req, sub, func(resp cachev3.DeltaResponse) { ch <- resp }), nil
}

// respondDelta is the response a subscription gets from state s, nil when
// there is nothing to send (createDeltaResponse and respondDelta in
// go-control-plane's cache). The versions the stream will hold are
// collected only for a response: most watches a new state meets have
// nothing to send. A wildcard response's are every resource of s, which
// it records as s's list (deltaSubscription).
func respondDelta(ctx context.Context, s *deltaState, req *cachev3.DeltaRequest, sub cachev3.Subscription) *deltaResponse {
	typ := cachev3.GetResponseType(req.GetTypeUrl())
	if typ == types.UnknownType {
		// Not a type the cache serves: answered empty, once, like any
		// type the snapshot does not have.
		return respondEmpty(ctx, req, sub)
	}
	all := s.resources[typ]
	resp := &deltaResponse{req: req, version: s.versions[typ], ctx: ctx}
	if sub.IsWildcard() {
		if held, ok := heldList(sub); ok {
			resp.resources, resp.removed = diffSorted(held, all)
		} else {
			resp.resources, resp.removed = diffReturned(sub.ReturnedResources(), all)
		}
		if len(resp.resources) == 0 && len(resp.removed) == 0 && req.GetResponseNonce() != "" {
			return nil
		}
		resp.all, resp.nextIsAll = all, true
		return resp
	}
	returned := sub.ReturnedResources()
	subscribed := sub.SubscribedResources()
	for name := range subscribed {
		prev, wasReturned := returned[name]
		if r := find(all, name); r != nil {
			if prev != r.Version || !wasReturned {
				resp.resources = append(resp.resources, r)
			}
		} else if wasReturned {
			resp.removed = append(resp.removed, name)
		}
	}
	if len(resp.resources) == 0 && len(resp.removed) == 0 {
		return nil
	}
	resp.next = make(map[string]string, len(subscribed))
	for name := range subscribed {
		if r := find(all, name); r != nil {
			resp.next[name] = r.Version
		}
	}
	return resp
}

// diffReturned is what a wildcard subscription is sent of all, sorted by
// name, when the client holds returned: each resource it lacks or holds
// at another version, and the names it holds that all lacks.
func diffReturned(returned map[string]string, all []*discoveryv3.Resource) (send []*discoveryv3.Resource, removed []string) {
	for _, r := range all {
		if prev, ok := returned[r.Name]; !ok || prev != r.Version {
			send = append(send, r)
		}
	}
	for name := range returned {
		if find(all, name) == nil {
			removed = append(removed, name)
		}
	}
	return send, removed
}

// diffSorted is diffReturned for a client that holds the list held,
// sorted by name as all is: one walk of the two lists, none when they
// are the same list.
func diffSorted(held, all []*discoveryv3.Resource) (send []*discoveryv3.Resource, removed []string) {
	if sameSlice(held, all) {
		return nil, nil
	}
	i, j := 0, 0
	for i < len(all) || j < len(held) {
		switch {
		case j == len(held) || (i < len(all) && all[i].Name < held[j].Name):
			send = append(send, all[i])
			i++
		case i == len(all) || held[j].Name < all[i].Name:
			removed = append(removed, held[j].Name)
			j++
		default:
			if all[i].Version != held[j].Version {
				send = append(send, all[i])
			}
			i++
			j++
		}
	}
	return send, removed
}

// respondEmpty answers the first request of a wildcard subscription to a
// type with no resources.
func respondEmpty(ctx context.Context, req *cachev3.DeltaRequest, sub cachev3.Subscription) *deltaResponse {
	if !sub.IsWildcard() || req.GetResponseNonce() != "" {
		return nil
	}
	return &deltaResponse{req: req, next: map[string]string{}, ctx: ctx}
}

// find is the resource named name in rs, sorted by name; nil if none.
func find(rs []*discoveryv3.Resource, name string) *discoveryv3.Resource {
	i, ok := slices.BinarySearchFunc(rs, name, func(r *discoveryv3.Resource, name string) int { return strings.Compare(r.Name, name) })
	if !ok {
		return nil
	}
	return rs[i]
}

// deltaResponse is a response of the deltaCache. Its resources are shared
// with every other node's responses: nothing may modify them.
type deltaResponse struct {
	req       *cachev3.DeltaRequest
	version   string
	resources []*discoveryv3.Resource
	removed   []string
	// next is what the client holds after the response, by name and
	// version; unless nextIsAll, when it holds all, the node's list of
	// the type the response was made from.
	next      map[string]string
	all       []*discoveryv3.Resource
	nextIsAll bool
	ctx       context.Context
}

var _ cachev3.DeltaResponse = (*deltaResponse)(nil)

// GetDeltaDiscoveryResponse returns a new message on every call: the
// server sets its nonce. Its resources are the shared ones, already
// marshaled.
func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	return &discoveryv3.DeltaDiscoveryResponse{
		Resources:         r.resources,
		RemovedResources:  r.removed,
		TypeUrl:           r.req.GetTypeUrl(),
		SystemVersionInfo: r.version,
	}, nil
}

func (r *deltaResponse) GetDeltaRequest() *cachev3.DeltaRequest  { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)       { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string              { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string    { return r.nextVersions() }
func (r *deltaResponse) GetReturnedResources() map[string]string { return r.nextVersions() }

// nextVersions is next, built from all when the response holds all.
func (r *deltaResponse) nextVersions() map[string]string {
	if r.nextIsAll {
		return versionMap(r.all)
	}
	return r.next
}
func (r *deltaResponse) GetContext() context.Context { return r.ctx }
