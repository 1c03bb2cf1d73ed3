package controlplane

import (
	"maps"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// absentAnnounced presents a delta subscription to go-control-plane's
// snapshot cache so that the cache answers names the snapshot lacks with a
// removal: the incremental protocol's "does not exist" is the name in
// removed_resources.
//
// The cache removes a subscribed name the snapshot lacks only when the
// subscription says the client holds it. absentAnnounced shows the names
// to announce as held at the empty version: a name the snapshot lacks is
// then removed, and one it has is sent, as any newly subscribed name is.
// The held names the server keeps after the response are the cache's own
// (those the snapshot has), so a name is announced once, not again on the
// client's ACK: only a request that subscribes to it announces it.
type absentAnnounced struct {
	cachev3.Subscription
	returned map[string]string
}

// ReturnedResources are the names the client holds, by version, with the
// names to announce at version "".
func (s absentAnnounced) ReturnedResources() map[string]string { return s.returned }

// announceAbsent returns sub as the cache should see it for a proxyless
// client's delta request. The names to announce are those the request
// subscribes to, held or not — the protocol asks the server to send a
// subscribed resource again even if the client seems to hold it — except
// those it lists in initial_resource_versions on reconnecting. Before the
// node has a snapshot they are every subscribed name the client does not
// hold: none has been answered, and a second request before the first
// snapshot would otherwise drop the first one's names.
func announceAbsent(req *cachev3.DeltaRequest, sub cachev3.Subscription, hasSnapshot bool) cachev3.Subscription {
	held, subscribed := sub.ReturnedResources(), sub.SubscribedResources()
	var returned map[string]string
	announce := func(name string) {
		if _, ok := subscribed[name]; !ok {
			return // "*", or unsubscribed in the same request
		}
		if returned == nil {
			returned = maps.Clone(held)
			if returned == nil {
				returned = map[string]string{}
			}
		}
		returned[name] = ""
	}
	if hasSnapshot {
		for _, name := range req.GetResourceNamesSubscribe() {
			if _, known := req.GetInitialResourceVersions()[name]; !known {
				announce(name)
			}
		}
	} else {
		for name := range subscribed {
			if _, ok := held[name]; !ok {
				announce(name)
			}
		}
	}
	if returned == nil {
		return sub
	}
	return absentAnnounced{Subscription: sub, returned: returned}
}
