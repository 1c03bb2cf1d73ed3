package controlplane

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/google/go-cmp/cmp"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// deltaStateOf is snap's resources in deltaCache's form, marshaled and
// hashed as go-control-plane does.
func deltaStateOf(t testing.TB, snap *cachev3.Snapshot) *deltaState {
	t.Helper()
	d := &deltaState{}
	for _, typ := range publishedTypes {
		rt := cachev3.GetResponseType(typ)
		d.versions[rt] = snap.GetVersion(typ)
		for name, r := range snap.GetResources(typ) {
			b, err := cachev3.MarshalResource(r)
			if err != nil {
				t.Fatal(err)
			}
			d.resources[rt] = append(d.resources[rt], &discoveryv3.Resource{Name: name, Version: cachev3.HashResource(b),
				Resource: &anypb.Any{TypeUrl: typ, Value: b}})
		}
		slices.SortFunc(d.resources[rt], func(a, b *discoveryv3.Resource) int { return strings.Compare(a.Name, b.Name) })
	}
	return d
}

// lazyOf is snap as the publisher hands it on, already built.
func lazyOf(snap *cachev3.Snapshot) *lazySnapshot {
	l := &lazySnapshot{}
	for i, typ := range publishedTypes {
		l.versions[i] = snap.GetVersion(typ)
	}
	l.once.Do(func() { l.built = snap })
	return l
}

// deltaWatcher is the part of a cache a delta stream uses.
type deltaWatcher interface {
	CreateDeltaWatch(*cachev3.DeltaRequest, cachev3.Subscription, chan cachev3.DeltaResponse) (func(), error)
}

// streamSub is a stream's subscription to one type as a delta server
// keeps it: deltaServer's deltaSubscription, or go-control-plane's
// stream.Subscription as its server keeps it (gcpSub).
type streamSub interface {
	cachev3.Subscription
	update(subscribe, unsubscribe []string)
	sent(cachev3.DeltaResponse)
}

type gcpSub struct{ streamv3.Subscription }

func (s *gcpSub) update(subscribe, unsubscribe []string) {
	s.UpdateResourceSubscriptions(subscribe, unsubscribe)
}
func (s *gcpSub) sent(resp cachev3.DeltaResponse) { s.SetReturnedResources(resp.GetNextVersionMap()) }

// deltaStream plays a delta server for one type of one node's stream: it
// keeps the subscription (go-control-plane's server's for its cache,
// deltaServer's for deltaCache), opens a watch per request, applies each
// response as the server does and records it.
type deltaStream struct {
	cache   deltaWatcher
	typeURL string
	node    *corev3.Node
	sub     streamSub
	ch      chan cachev3.DeltaResponse
	cancel  func()
	nonce   int
	got     []string // each response, rendered
}

func (s *deltaStream) request(t *testing.T, subscribe, unsubscribe []string) {
	t.Helper()
	req := &discoveryv3.DeltaDiscoveryRequest{Node: s.node, TypeUrl: s.typeURL, ResourceNamesSubscribe: subscribe, ResourceNamesUnsubscribe: unsubscribe}
	if s.nonce > 0 {
		req.ResponseNonce = fmt.Sprint(s.nonce)
	}
	if s.ch == nil {
		s.ch = make(chan cachev3.DeltaResponse, types.UnknownType)
		if _, ours := s.cache.(*deltaCache); ours {
			s.sub = newDeltaSubscription(req)
		} else {
			s.sub = &gcpSub{streamv3.NewDeltaSubscription(subscribe, unsubscribe, nil, true)}
		}
	} else {
		if s.cancel != nil {
			s.cancel()
		}
		s.sub.update(subscribe, unsubscribe)
	}
	cancel, err := s.cache.CreateDeltaWatch(req, s.sub, s.ch)
	if err != nil {
		t.Fatal(err)
	}
	s.cancel = cancel
	s.drain(t)
}

// drain applies every response waiting, each followed by its ACK.
func (s *deltaStream) drain(t *testing.T) {
	t.Helper()
	for {
		select {
		case resp := <-s.ch:
			m, err := resp.GetDeltaDiscoveryResponse()
			if err != nil {
				t.Fatal(err)
			}
			var sent []string
			for _, r := range m.GetResources() {
				sent = append(sent, r.GetName()+"@"+r.GetVersion()[:8])
			}
			slices.Sort(sent)
			removed := slices.Sorted(slices.Values(m.GetRemovedResources()))
			next := resp.GetNextVersionMap()
			names := slices.Sorted(func(yield func(string) bool) {
				for k, v := range next {
					if !yield(k + "@" + v[:min(8, len(v))]) {
						return
					}
				}
			})
			s.got = append(s.got, fmt.Sprintf("%s sent %v removed %v now %v", m.GetSystemVersionInfo(), sent, removed, names))
			s.sub.sent(resp)
			s.nonce++
			s.cancel = nil
			s.request(t, nil, nil) // the ACK
		default:
			return
		}
	}
}

// TestDeltaCacheMatchesGoControlPlane drives deltaCache and go-control-
// plane's ADS snapshot cache with the same random sequences of snapshots
// and subscription changes, wildcard and named, and wants the same
// responses from both: what is sent, at which versions, what is removed,
// and what the stream then holds.
func TestDeltaCacheMatchesGoControlPlane(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e"}
	responses := 0
	t.Cleanup(func() {
		if responses < 2000 {
			t.Errorf("%d responses in all: the sequences test too little", responses)
		}
	})
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 17))
			theirs := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
			ours := newDeltaCache()
			node := &corev3.Node{Id: "n"}
			wildcard := rng.IntN(2) == 0
			var streams [2][]*deltaStream // theirs, ours
			for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
				for i, c := range []deltaWatcher{theirs, ours} {
					streams[i] = append(streams[i], &deltaStream{cache: c, typeURL: typ, node: node})
				}
			}
			var last *deltaState
			publish := func(version int) {
				snap := randomSnapshot(t, rng, fmt.Sprint(version), names)
				if err := theirs.SetSnapshot(context.Background(), "n", snap); err != nil {
					t.Fatal(err)
				}
				last = keepUnchanged(last, deltaStateOf(t, snap))
				ours.set(context.Background(), "n", last)
				for i := range streams {
					for _, s := range streams[i] {
						s.drain(t)
					}
				}
			}
			if rng.IntN(2) == 0 {
				publish(0)
			}
			for k := range streams[0] {
				var first []string
				if !wildcard {
					first = pick(rng, names)
				}
				for i := range streams {
					streams[i][k].request(t, first, nil)
				}
			}
			for step := range 12 {
				if rng.IntN(2) == 0 || (wildcard && rng.IntN(3) > 0) {
					publish(step + 1)
					continue
				}
				k := rng.IntN(len(streams[0]))
				subscribe, unsubscribe := pick(rng, names), pick(rng, names)
				for i := range streams {
					streams[i][k].request(t, subscribe, unsubscribe)
				}
			}
			for k := range streams[0] {
				if diff := cmp.Diff(streams[0][k].got, streams[1][k].got); diff != "" {
					t.Errorf("%s responses (-go-control-plane +deltaCache):\n%s", streams[0][k].typeURL, diff)
				}
				responses += len(streams[0][k].got)
			}
		})
	}
}

// keepUnchanged gives next the resource lists of last, the same slices,
// for the types whose resources did not change, as the publisher does.
func keepUnchanged(last, next *deltaState) *deltaState {
	if last == nil {
		return next
	}
	for typ := range next.resources {
		if slices.EqualFunc(last.resources[typ], next.resources[typ], func(a, b *discoveryv3.Resource) bool {
			return a.Name == b.Name && a.Version == b.Version
		}) {
			next.resources[typ] = last.resources[typ]
		}
	}
	return next
}

// pick is a random subset of names, possibly empty.
func pick(rng *rand.Rand, names []string) []string {
	var out []string
	for _, n := range names {
		if rng.IntN(3) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// randomSnapshot holds a random subset of names as clusters and listeners,
// each with one of two contents.
func randomSnapshot(t *testing.T, rng *rand.Rand, version string, names []string) *cachev3.Snapshot {
	t.Helper()
	var clusters, listeners []types.Resource
	for _, n := range names {
		if rng.IntN(4) > 0 {
			clusters = append(clusters, &clusterv3.Cluster{Name: n, ConnectTimeout: durationpb.New(time.Duration(1+rng.IntN(2)) * time.Second)})
		}
		if rng.IntN(4) > 0 {
			listeners = append(listeners, &listenerv3.Listener{Name: n, StatPrefix: fmt.Sprint(rng.IntN(2))})
		}
	}
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{resourcev3.ClusterType: clusters, resourcev3.ListenerType: listeners})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestDeltaCacheDoesNotResendANACKedVersion: a NACK is a request like an
// ACK, and the stream holds what it was sent, so the cache waits for the
// next snapshot that changes something rather than sending the rejected
// version again (a loop with a sidecar that keeps rejecting it).
func TestDeltaCacheDoesNotResendANACKedVersion(t *testing.T) {
	c := newDeltaCache()
	node := &corev3.Node{Id: "n"}
	first := listenerSnapshot(t, "a", "b")
	state := deltaStateOf(t, first)
	c.set(context.Background(), "n", state)
	s := &deltaStream{cache: c, typeURL: resourcev3.ListenerType, node: node}
	s.request(t, nil, nil) // answered, then ACKed by drain
	if len(s.got) != 1 {
		t.Fatalf("responses %q, want the first snapshot", s.got)
	}
	// The NACK of that response: the same stream state, an error.
	req := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: fmt.Sprint(s.nonce),
		ErrorDetail: &statuspb.Status{Message: "listener a: rejected"}}
	s.cancel()
	cancel, err := c.CreateDeltaWatch(req, s.sub, s.ch)
	if err != nil || cancel == nil {
		t.Fatalf("CreateDeltaWatch after a NACK = %v, %v; want a watch that waits", cancel != nil, err)
	}
	s.cancel = cancel
	c.set(context.Background(), "n", state) // republished as it was
	s.drain(t)
	if len(s.got) != 1 {
		t.Fatalf("responses %q: the NACKed version was sent again", s.got)
	}
	changed := listenerSnapshot(t, "a", "b", "c")
	c.set(context.Background(), "n", keepUnchanged(state, deltaStateOf(t, changed)))
	s.drain(t)
	if len(s.got) != 2 || !strings.Contains(s.got[1], "sent [c@") {
		t.Fatalf("responses %q, want c sent once the snapshot changed", s.got)
	}
}
