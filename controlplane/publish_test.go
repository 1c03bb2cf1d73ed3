package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// recordingSink keeps the last snapshot of every node and counts sets.
type recordingSink struct {
	snaps map[string]cachev3.ResourceSnapshot
	sets  map[string]int
}

func newRecordingSink() *recordingSink {
	return &recordingSink{snaps: map[string]cachev3.ResourceSnapshot{}, sets: map[string]int{}}
}

func (s *recordingSink) SetSnapshot(_ context.Context, node string, snap *lazySnapshot, _ *deltaState) error {
	s.snaps[node] = snap.snapshot()
	s.sets[node]++
	return nil
}

func (s *recordingSink) Unpublish(node string) { delete(s.snaps, node) }

func newTestPublisher(sink snapshotSink) *publisher {
	return newPublisher(sink, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry()))
}

// catalogChanges is a sequence of snapshots, each one change from the last
// and sharing every unchanged value with it, as discovery publishes them.
func catalogChanges(n int) []*catalog.Snapshot {
	first := largeCatalog(n)
	next := func(prev *catalog.Snapshot, change func(*catalog.Snapshot)) *catalog.Snapshot {
		s := *prev
		s.Version++
		s.Proxies, s.Endpoints, s.ServiceDefaults = maps.Clone(prev.Proxies), maps.Clone(prev.Endpoints), maps.Clone(prev.ServiceDefaults)
		change(&s)
		return &s
	}
	critical := next(first, func(s *catalog.Snapshot) {
		eps := slices.Clone(s.Endpoints["svc-5"])
		eps[0].Health = catalog.HealthCritical
		s.Endpoints["svc-5"] = eps
	})
	gone := next(critical, func(s *catalog.Snapshot) {
		delete(s.Proxies, "svc-7-1-sidecar-proxy")
		s.Endpoints["svc-7"] = s.Endpoints["svc-7"][:1]
	})
	tcp := next(gone, func(s *catalog.Snapshot) { delete(s.ServiceDefaults, "svc-2") })
	passing := next(tcp, func(s *catalog.Snapshot) { s.Endpoints["svc-5"] = first.Endpoints["svc-5"] })
	return []*catalog.Snapshot{first, critical, gone, tcp, passing}
}

// TestPublishSetsOnlyChangedProxies checks that a change hands new
// snapshots only to the proxies it concerns.
func TestPublishSetsOnlyChangedProxies(t *testing.T) {
	snaps := catalogChanges(20)
	sink := newRecordingSink()
	p := newTestPublisher(sink)
	x := translate.NewTranslator()
	for i, snap := range snaps[:2] {
		changed, err := p.publish(context.Background(), x.Translate(snap, benchMesh), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{40, 4}[i]; changed != want {
			t.Errorf("publish %d: %d proxies changed, want %d", i, changed, want)
		}
	}
	var setTwice []string
	for node, n := range sink.sets {
		if n > 1 {
			setTwice = append(setTwice, node)
		}
	}
	slices.Sort(setTwice)
	// svc-3 and svc-4 have svc-5 as an upstream.
	want := []string{"svc-3-0-sidecar-proxy", "svc-3-1-sidecar-proxy", "svc-4-0-sidecar-proxy", "svc-4-1-sidecar-proxy"}
	if diff := cmp.Diff(want, setTwice); diff != "" {
		t.Errorf("proxies given a second snapshot (-want +got):\n%s", diff)
	}
}

// TestPublishInternsPublishedResources checks, after every change, that
// exactly the catalog's proxies are published, that the interned resources are exactly those the published snapshots hold,
// each counted once per snapshot holding it, and that every snapshot holds
// the interned proto of its content.
func TestPublishInternsPublishedResources(t *testing.T) {
	sink := newRecordingSink()
	p := newTestPublisher(sink)
	x := translate.NewTranslator()
	for i, snap := range catalogChanges(20) {
		if _, err := p.publish(context.Background(), x.Translate(snap, benchMesh), time.Now()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(slices.Sorted(maps.Keys(snap.Proxies)), slices.Sorted(maps.Keys(sink.snaps))); diff != "" {
			t.Errorf("publish %d: published nodes (-catalog +published):\n%s", i, diff)
		}
		want := map[internKey]int{}
		for node, s := range sink.snaps {
			for _, typ := range publishedTypes {
				for name, r := range s.GetResources(typ) {
					k := contentKey(t, r)
					want[k]++
					if in := p.interned[k]; in == nil || types.Resource(in.res) != r {
						t.Errorf("publish %d: node %s resource %s is not the interned proto", i, node, name)
					}
				}
			}
		}
		got := map[internKey]int{}
		for k, in := range p.interned {
			got[k] = in.refs
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(internKey{})); diff != "" {
			t.Errorf("publish %d: interned references (-held +counted):\n%s", i, diff)
		}
		// The reverse index names exactly the interned protos, each by
		// its own content: a stale entry would let a changed proto skip
		// validation and hashing.
		if len(p.canonical) != len(p.interned) {
			t.Errorf("publish %d: %d protos indexed, %d interned", i, len(p.canonical), len(p.interned))
		}
		for r, k := range p.canonical {
			if in := p.interned[k]; in == nil || types.Resource(in.res) != r || contentKey(t, r) != k {
				t.Errorf("publish %d: the reverse index holds a proto that is not the interned one of its content", i)
			}
		}
	}
}

func contentKey(t *testing.T, r types.Resource) internKey {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return internKey{typ: string(r.ProtoReflect().Descriptor().FullName()), hash: hex.EncodeToString(sum[:])}
}

// TestPublishVersionsIndependentOfHistory checks that a publisher that
// followed every change publishes the same versions as one that sees only
// the final catalog, as two control-plane replicas must.
func TestPublishVersionsIndependentOfHistory(t *testing.T) {
	snaps := catalogChanges(20)
	followed, fresh := newRecordingSink(), newRecordingSink()
	p, x := newTestPublisher(followed), translate.NewTranslator()
	for _, snap := range snaps {
		if _, err := p.publish(context.Background(), x.Translate(snap, benchMesh), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	last := snaps[len(snaps)-1]
	if _, err := newTestPublisher(fresh).publish(context.Background(), translate.Translate(last, benchMesh), time.Now()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(versionsOf(fresh), versionsOf(followed)); diff != "" {
		t.Errorf("versions (-fresh +followed):\n%s", diff)
	}
}

func versionsOf(s *recordingSink) map[string][]string {
	out := map[string][]string{}
	for node, snap := range s.snaps {
		for _, typ := range publishedTypes {
			out[node] = append(out[node], snap.GetVersion(typ))
		}
	}
	return out
}

// TestPublishRejectsInconsistentSnapshots: a proxy whose EDS cluster has
// no load assignment is not published (go-control-plane's consistency
// check), and one published before keeps its snapshot; a proxy whose
// load assignment comes back is published again.
func TestPublishRejectsInconsistentSnapshots(t *testing.T) {
	cluster := &clusterv3.Cluster{
		Name:                 "api",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ResourceApiVersion:    corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		}},
		ConnectTimeout: durationpb.New(time.Second),
	}
	load := &endpointv3.ClusterLoadAssignment{ClusterName: "api"}
	sink := newRecordingSink()
	p := newTestPublisher(sink)
	publish := func(r *translate.Resources) error {
		_, err := p.publish(context.Background(), &translate.Result{Proxies: map[string]*translate.Resources{"web-1": r}}, time.Now())
		return err
	}

	if err := publish(&translate.Resources{Clusters: []*clusterv3.Cluster{cluster}}); err == nil || !strings.Contains(err.Error(), "inconsistent snapshot") {
		t.Fatalf("an EDS cluster without its load assignment: error %v, want an inconsistent snapshot", err)
	}
	if _, ok := sink.snaps["web-1"]; ok {
		t.Fatal("an inconsistent snapshot was published")
	}
	if err := publish(&translate.Resources{Clusters: []*clusterv3.Cluster{cluster}, Endpoints: []*endpointv3.ClusterLoadAssignment{load}}); err != nil {
		t.Fatalf("a consistent snapshot: %v", err)
	}
	good := sink.snaps["web-1"].GetVersion(resourcev3.EndpointType)
	if err := publish(&translate.Resources{Clusters: []*clusterv3.Cluster{proto.Clone(cluster).(*clusterv3.Cluster)}}); err == nil {
		t.Fatal("the load assignment dropped: want an inconsistent snapshot")
	}
	if v := sink.snaps["web-1"].GetVersion(resourcev3.EndpointType); v != good || sink.sets["web-1"] != 1 {
		t.Errorf("after a rejected snapshot: endpoints version %q and %d sets, want the last good %q and 1", v, sink.sets["web-1"], good)
	}
}

// TestPublishPartialResultTouchesOnlyChanged: a partial Result is applied
// through its Changed list alone: a proxy listed with new resources is
// published, one listed and absent is unpublished, and an unlisted proxy
// keeps its snapshot even if its *Resources were replaced (the Translator
// guarantees they were not; publishing them anyway would make every
// publish cost the size of the mesh). A proxy rejected before is tried
// again on every publish until it is accepted.
func TestPublishPartialResultTouchesOnlyChanged(t *testing.T) {
	sink := newRecordingSink()
	p := newTestPublisher(sink)
	static := func(name string) *translate.Resources {
		return &translate.Resources{Clusters: []*clusterv3.Cluster{{Name: name, ConnectTimeout: durationpb.New(time.Second),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}}}}
	}
	all := map[string]*translate.Resources{"a": static("a"), "b": static("b"), "c": static("c")}
	if _, err := p.publish(context.Background(), &translate.Result{Proxies: maps.Clone(all)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	next := map[string]*translate.Resources{"a": static("a2"), "b": static("b2")} // c left; b replaced, unlisted
	changed, err := p.publish(context.Background(), &translate.Result{Proxies: next, Partial: true, Changed: []string{"a", "c"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if changed != 1 || sink.sets["a"] != 2 || sink.sets["b"] != 1 {
		t.Errorf("publish of a partial result: %d changed, sets a=%d b=%d; want 1 changed, a set again and b not", changed, sink.sets["a"], sink.sets["b"])
	}
	if _, ok := sink.snaps["c"]; ok {
		t.Error("c, listed and absent, is still published")
	}
	if _, ok := p.published["c"]; ok {
		t.Error("the publisher still holds c")
	}

	// A rejected proxy (an EDS cluster without its load assignment) is
	// tried again while unlisted, and published once it is consistent.
	eds := &clusterv3.Cluster{Name: "d", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		ConnectTimeout: durationpb.New(time.Second)}
	bad := &translate.Resources{Clusters: []*clusterv3.Cluster{eds}}
	next["d"] = bad
	if _, err := p.publish(context.Background(), &translate.Result{Proxies: next, Partial: true, Changed: []string{"d"}}, time.Now()); err == nil {
		t.Fatal("d's inconsistent snapshot was accepted")
	}
	if _, err := p.publish(context.Background(), &translate.Result{Proxies: next, Partial: true}, time.Now()); err == nil {
		t.Fatal("d, rejected before and unlisted, was not tried again")
	}
	bad.Endpoints = []*endpointv3.ClusterLoadAssignment{{ClusterName: "d"}}
	if _, err := p.publish(context.Background(), &translate.Result{Proxies: next, Partial: true}, time.Now()); err != nil {
		t.Fatalf("d made consistent: %v", err)
	}
	if sink.sets["d"] != 1 {
		t.Errorf("d set %d times, want once", sink.sets["d"])
	}
}
