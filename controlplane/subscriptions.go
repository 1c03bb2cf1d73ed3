package controlplane

import (
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// namedSubscription is what one stream of a proxyless client subscribed
// to of one type, and which of those names the control plane has sent it,
// for operators (weft proxy-status). The status tracker keeps one per
// stream and type, under its lock, and reports their union per client.
type namedSubscription struct {
	subscribed map[string]bool
	// held are the names of the last response (SotW, where every response
	// holds every subscribed resource there is) or those sent and neither
	// removed nor unsubscribed since (delta).
	held map[string]bool
}

// sotwRequest records the names a state-of-the-world request asks for:
// all of them, each time. The client drops those it no longer asks for.
func (n *namedSubscription) sotwRequest(names []string) {
	n.subscribed = setOf(names)
	maps.DeleteFunc(n.held, func(name string, _ bool) bool { return !n.subscribed[name] })
}

// deltaRequest applies an incremental request's changes.
func (n *namedSubscription) deltaRequest(subscribe, unsubscribe []string) {
	if n.subscribed == nil {
		n.subscribed = map[string]bool{}
	}
	for _, name := range subscribe {
		n.subscribed[name] = true
	}
	for _, name := range unsubscribe {
		delete(n.subscribed, name)
		delete(n.held, name)
	}
}

// sotwResponse records the names a state-of-the-world response carried.
func (n *namedSubscription) sotwResponse(names []string) {
	n.held = setOf(names)
}

// deltaResponse applies an incremental response's resources and removals.
func (n *namedSubscription) deltaResponse(resp *discoveryv3.DeltaDiscoveryResponse) {
	if n.held == nil {
		n.held = map[string]bool{}
	}
	for _, r := range resp.GetResources() {
		n.held[r.GetName()] = true
	}
	for _, name := range resp.GetRemovedResources() {
		delete(n.held, name)
	}
}

// namedSubscriptions are the subscriptions of one proxyless client to one
// type, one per stream: grpc-go opens an ADS stream per target it dials.
type namedSubscriptions []*namedSubscription

// report copies into t the union of the subscriptions as sorted names:
// subscribed, sent, and subscribed but not sent — names the mesh has no
// resource for, or whose answer is on its way.
func (subs namedSubscriptions) report(t *TypeSync) {
	subscribed, held := map[string]bool{}, map[string]bool{}
	for _, n := range subs {
		maps.Copy(subscribed, n.subscribed)
		maps.Copy(held, n.held)
	}
	t.Subscribed = slices.Sorted(maps.Keys(subscribed))
	t.Sent = slices.Sorted(maps.Keys(held))
	t.Missing = nil
	for _, name := range t.Subscribed {
		if !held[name] && name != "*" {
			t.Missing = append(t.Missing, name)
		}
	}
}

func setOf(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, name := range names {
		set[name] = true
	}
	return set
}

// resourceNames are the names of the resources in a state-of-the-world
// response; one that cannot be decoded is left out.
func resourceNames(resp *discoveryv3.DiscoveryResponse) []string {
	names := make([]string, 0, len(resp.GetResources()))
	for _, a := range resp.GetResources() {
		m, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
		if err != nil {
			continue
		}
		if r, ok := m.(*discoveryv3.Resource); ok {
			names = append(names, r.GetName())
			continue
		}
		if name := cachev3.GetResourceName(m); name != "" {
			names = append(names, name)
		}
	}
	return names
}
