package controlplane

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

// deltaSubscription is a delta stream's subscription to one type:
// go-control-plane's stream.Subscription (the names subscribed to,
// wildcard or not, and what the client holds by name and version), except
// that after a response to a wildcard subscription what the client holds
// is kept as the node's resource list the response was made from.
//
// A wildcard response leaves the client holding exactly every resource of
// the node's state at the state's versions, and that state's list is
// shared by the node's streams and never modified (deltaState), so a
// reference to it says what a map of names to versions would. The map
// was built for every stream and response: about 16 MiB at 10,000
// sidecars, and 10,000 maps built and dropped for every change they all
// hold. The next response compares the node's new list with the held one
// in one walk of the two sorted lists (respondDelta).
//
// The map is built again (materialize) only when something needs it: a
// request that changes the subscription (go-control-plane's subscription
// edits the map), or a cache that reads ReturnedResources (a proxyless
// client's go-control-plane cache).
//
// Like stream.Subscription, it is used by its stream's goroutines one at
// a time, and by the cache only while the stream's watch of the type is
// open, when the stream leaves it alone.
type deltaSubscription struct {
	streamv3.Subscription
	// held, when heldSet, is what the client holds, sorted by name; the
	// Subscription's map is stale then.
	held    []*discoveryv3.Resource
	heldSet bool
}

var _ cachev3.Subscription = (*deltaSubscription)(nil)

// newDeltaSubscription is the subscription a stream's first request of a
// type opens: legacy wildcard when it names nothing, as go-control-plane's
// delta server has it.
func newDeltaSubscription(req *discoveryv3.DeltaDiscoveryRequest) *deltaSubscription {
	return &deltaSubscription{Subscription: streamv3.NewDeltaSubscription(req.GetResourceNamesSubscribe(),
		req.GetResourceNamesUnsubscribe(), req.GetInitialResourceVersions(), true)}
}

// ReturnedResources is what the client holds, by name and version.
func (s *deltaSubscription) ReturnedResources() map[string]string {
	s.materialize()
	return s.Subscription.ReturnedResources()
}

// heldList is what the client of sub holds as a node's resource list,
// when sub is a deltaSubscription that a wildcard response left so.
func heldList(sub cachev3.Subscription) ([]*discoveryv3.Resource, bool) {
	if ds, ok := sub.(*deltaSubscription); ok && ds.heldSet {
		return ds.held, true
	}
	return nil, false
}

// update applies a later request's subscribe and unsubscribe lists.
func (s *deltaSubscription) update(subscribe, unsubscribe []string) {
	if len(subscribe) > 0 || len(unsubscribe) > 0 {
		s.materialize()
	}
	s.Subscription.UpdateResourceSubscriptions(subscribe, unsubscribe)
}

// sent records what a response sent on the stream leaves the client
// holding.
func (s *deltaSubscription) sent(resp cachev3.DeltaResponse) {
	if r, ok := resp.(*deltaResponse); ok && r.nextIsAll {
		s.held, s.heldSet = r.all, true
		return
	}
	s.held, s.heldSet = nil, false
	s.Subscription.SetReturnedResources(resp.GetNextVersionMap())
}

// materialize makes the Subscription's map say what held says.
func (s *deltaSubscription) materialize() {
	if !s.heldSet {
		return
	}
	s.Subscription.SetReturnedResources(versionMap(s.held))
	s.held, s.heldSet = nil, false
}

// versionMap is rs by name and version.
func versionMap(rs []*discoveryv3.Resource) map[string]string {
	m := make(map[string]string, len(rs))
	for _, r := range rs {
		m[r.Name] = r.Version
	}
	return m
}
