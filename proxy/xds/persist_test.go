package xds

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
)

const proxyID = "web-1-sidecar-proxy"

// ignoreDigests compares States by their resources alone.
var ignoreDigests = cmpopts.IgnoreUnexported(Resources{})

func items(msgs ...proto.Message) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, m := range msgs {
		for _, t := range resourceTypes {
			if m.ProtoReflect().Descriptor() == t.new().ProtoReflect().Descriptor() {
				out[t.name(m)] = m
			}
		}
	}
	return out
}

func savedState() State {
	return State{
		Listeners: Resources{Version: "l1", Received: true, Items: items(listener("a"), listener("b"))},
		Clusters:  Resources{Version: "c1", Received: true, Items: items(&clusterv3.Cluster{Name: "api"})},
		Routes:    Resources{Version: "r1", Received: true, Items: items(&routev3.RouteConfiguration{Name: "api"})},
		Endpoints: Resources{Version: "e1", Received: true, Items: items(&endpointv3.ClusterLoadAssignment{ClusterName: "api"})},
		Secrets:   Resources{Version: "s1", Received: true, Items: items(&tlsv3.Secret{Name: "weft-roots"})},
	}
}

func TestStateRoundTrip(t *testing.T) {
	want := savedState()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := MarshalState(proxyID, want, at)
	if err != nil {
		t.Fatal(err)
	}
	got, savedAt, err := UnmarshalState(proxyID, b)
	if err != nil {
		t.Fatalf("UnmarshalState: %v", err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(), ignoreDigests); diff != "" {
		t.Errorf("state after a round trip (-want +got):\n%s", diff)
	}
	if !savedAt.Equal(at) {
		t.Errorf("saved at %v, want %v", savedAt, at)
	}
	// Types never received stay unreceived.
	partial := State{Listeners: want.Listeners, Clusters: want.Clusters}
	b, _ = MarshalState(proxyID, partial, at)
	if got, _, err := UnmarshalState(proxyID, b); err != nil || got.Routes.Received || got.Secrets.Received {
		t.Errorf("partial state came back as %+v, %v", got, err)
	}
}

func TestUnmarshalStateRejects(t *testing.T) {
	good, err := MarshalState(proxyID, savedState(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(*saved)) []byte {
		var s saved
		if err := json.Unmarshal(good, &s); err != nil {
			t.Fatal(err)
		}
		fn(&s)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	invalid, _ := anypb.New(&listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: ""}}}}})
	invalidRaw, _ := proto.Marshal(invalid)
	wrongType, _ := anypb.New(&routev3.RouteConfiguration{Name: "r"})
	wrongTypeRaw, _ := proto.Marshal(wrongType)
	tests := []struct {
		name    string
		file    []byte
		wantErr string
	}{
		{"truncated", good[:len(good)/2], "not a saved xDS state"},
		{"not JSON", []byte("\x00\x01garbage"), "not a saved xDS state"},
		{"empty", nil, "not a saved xDS state"},
		{"future format", edit(func(s *saved) { s.Format = 2 }), "format 2, want 1"},
		{"another proxy's", edit(func(s *saved) { s.ProxyID = "api-1-sidecar-proxy" }), `belongs to proxy "api-1-sidecar-proxy", not "web-1-sidecar-proxy"`},
		{"unknown type", edit(func(s *saved) { s.Types[0].TypeURL = "type.googleapis.com/x.Y" }), `unknown type "type.googleapis.com/x.Y"`},
		{"type twice", edit(func(s *saved) { s.Types = append(s.Types, s.Types[0]) }), "saved twice"},
		{"undecodable Any", edit(func(s *saved) { s.Types[0].Resources[0] = []byte{0xff, 0xff} }), "saved cluster resource 0"},
		{"invalid listener", edit(func(s *saved) { s.Types[2].Resources = [][]byte{invalidRaw} }), `listener "l": invalid`},
		{"wrong type in a list", edit(func(s *saved) { s.Types[2].Resources = [][]byte{wrongTypeRaw} }), "RouteConfiguration\" in a type.googleapis.com/envoy.config.listener.v3.Listener"},
		{"no listeners", edit(func(s *saved) { s.Types = s.Types[:2] }), "no listeners or no clusters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := UnmarshalState(proxyID, tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("UnmarshalState error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestRestoreResumesFromSavedVersions: a client seeded with a saved state
// opens its first stream as after a reconnect: every type's request
// carries the saved version and subscriptions, and the saved
// configuration is its state until the server sends something new.
func TestRestoreResumesFromSavedVersions(t *testing.T) {
	srv := startFakeADS(t)
	a := &testApplier{}
	s := savedState()
	c := New(Options{
		Addrs:   []string{srv.addr},
		Node:    nodeOf(proxyID),
		Apply:   a.apply,
		Logger:  testLogger(t),
		Backoff: Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	c.Restore(s, Subscriptions{Routes: []string{"api"}, Endpoints: []string{"api"}, Secrets: []string{"weft-roots"}})
	if got := c.Status().Types[ListenerType].Version; got != "l1" {
		t.Errorf("status listener version after Restore = %q, want l1", got)
	}
	runClient(t, c)
	st := srv.nextStream(t)
	for _, want := range []*discoveryv3.DiscoveryRequest{
		{TypeUrl: ClusterType, VersionInfo: "c1"},
		{TypeUrl: EndpointType, VersionInfo: "e1", ResourceNames: []string{"api"}},
		{TypeUrl: ListenerType, VersionInfo: "l1"},
		{TypeUrl: RouteType, VersionInfo: "r1", ResourceNames: []string{"api"}},
		{TypeUrl: SecretType, VersionInfo: "s1", ResourceNames: []string{"weft-roots"}},
	} {
		wantRequest(t, st.next(t), want)
	}
	if diff := cmp.Diff(s, c.State(), protocmp.Transform(), ignoreDigests); diff != "" {
		t.Errorf("state after Restore (-want +got):\n%s", diff)
	}
	if len(a.states) != 0 {
		t.Errorf("Restore called the applier %d times; the caller applies the saved state itself", len(a.states))
	}
}

func nodeOf(id string) *corev3.Node { return &corev3.Node{Id: id} }

// runClient runs c until the test ends.
func runClient(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
