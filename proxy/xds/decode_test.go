package xds

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// load is a load assignment whose content differs with weight.
func load(name string, weight uint32) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Policy: &endpointv3.ClusterLoadAssignment_Policy{OverprovisioningFactor: wrapperspb.UInt32(weight)}}
}

// eds is a state-of-the-world EDS response.
func eds(version string, msgs ...proto.Message) *discoveryv3.DiscoveryResponse {
	return response(EndpointType, version, "", msgs...)
}

// samePointers reports which names of want hold the same message pointer
// in got, and which a different one.
func samePointers(got, want Resources) (same, changed []string) {
	for _, name := range names(want.Items) {
		if got.Items[name] == want.Items[name] {
			same = append(same, name)
		} else {
			changed = append(changed, name)
		}
	}
	return same, changed
}

// TestSotWKeepsUnchangedResources: a state-of-the-world response decodes
// only the resources whose bytes changed; the others stay the accepted
// messages, so that the compile step sees them unchanged by pointer. A
// NACKed response leaves what is reused as it was.
func TestSotWKeepsUnchangedResources(t *testing.T) {
	reject := false
	c := New(Options{Apply: func(State) (Subscriptions, error) {
		if reject {
			return Subscriptions{}, errors.New("rejected")
		}
		return Subscriptions{}, nil
	}})
	c.subs = Subscriptions{Endpoints: []string{"a", "b"}}
	typ := lookupType(EndpointType)
	apply := func(resp *discoveryv3.DiscoveryResponse) Resources {
		t.Helper()
		if _, err := c.apply(typ, resp); err != nil && !reject {
			t.Fatalf("apply %s: %v", resp.GetVersionInfo(), err)
		}
		return c.State().Endpoints
	}
	v1 := apply(eds("v1", load("a", 1), load("b", 1)))
	v2 := apply(eds("v2", load("a", 1), load("b", 2)))
	if same, changed := samePointers(v2, v1); strings.Join(same, ",") != "a" || strings.Join(changed, ",") != "b" {
		t.Errorf("after changing b: same pointers %v, new %v; want a kept and b new", same, changed)
	}
	if got := v2.Items["b"].(*endpointv3.ClusterLoadAssignment); !proto.Equal(got, load("b", 2)) {
		t.Errorf("b = %v, want the new content", got)
	}
	reject = true
	apply(eds("v3", load("a", 3), load("b", 3)))
	reject = false
	v4 := apply(eds("v4", load("a", 1), load("b", 2)))
	if same, changed := samePointers(v4, v2); len(changed) > 0 {
		t.Errorf("after a NACK and the accepted content again: same pointers %v, new %v; want all kept", same, changed)
	}
}

// TestDeltaKeepsResentResources: a delta response that re-sends an
// accepted resource with the same bytes (under a new version) keeps its
// message; reuse never hides a resource sent under another name.
func TestDeltaKeepsResentResources(t *testing.T) {
	typ := lookupType(EndpointType)
	delta := func(msgs map[string]proto.Message) *discoveryv3.DeltaDiscoveryResponse {
		resp := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: EndpointType}
		for _, name := range names(msgs) {
			a, err := anypb.New(msgs[name])
			if err != nil {
				t.Fatal(err)
			}
			resp.Resources = append(resp.Resources, &discoveryv3.Resource{Name: name, Version: time.Now().String(), Resource: a})
		}
		return resp
	}
	first, _, err := decodeDelta(typ, delta(map[string]proto.Message{"a": load("a", 1), "b": load("b", 1)}), Resources{})
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := decodeDelta(typ, delta(map[string]proto.Message{"a": load("a", 1), "b": load("b", 2)}), first)
	if err != nil {
		t.Fatal(err)
	}
	if same, changed := samePointers(again, first); strings.Join(same, ",") != "a" || strings.Join(changed, ",") != "b" {
		t.Errorf("same pointers %v, new %v; want a kept and b new", same, changed)
	}
	_, _, err = decodeDelta(typ, delta(map[string]proto.Message{"b": load("a", 1)}), first)
	if want := `cluster load assignment "a": sent under the name "b"`; err == nil || err.Error() != want {
		t.Errorf("a's bytes under the name b: error %v, want %q", err, want)
	}
}

// TestRestoredStateIsReused: the saved state, once restored, is what the
// first responses are compared with.
func TestRestoredStateIsReused(t *testing.T) {
	saved := savedState()
	b, err := MarshalState(proxyID, saved, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := UnmarshalState(proxyID, b)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{Node: &corev3.Node{Id: proxyID}, Apply: func(State) (Subscriptions, error) { return Subscriptions{}, nil }})
	c.Restore(s, Subscriptions{Endpoints: []string{"api"}})
	if _, err := c.apply(lookupType(EndpointType), eds("e2", saved.Endpoints.Items["api"])); err != nil {
		t.Fatal(err)
	}
	if c.State().Endpoints.Items["api"] != s.Endpoints.Items["api"] {
		t.Error("a response with the restored load assignment's bytes decoded it again")
	}
}
