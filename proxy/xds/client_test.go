package xds

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
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
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
)

// testApplier records candidate states and answers from a script.
type testApplier struct {
	mu     sync.Mutex
	states []State
	fail   func(State) error
	subs   func(State) Subscriptions
}

func (a *testApplier) apply(s State) (Subscriptions, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.states = append(a.states, s)
	if a.fail != nil {
		if err := a.fail(s); err != nil {
			return Subscriptions{}, err
		}
	}
	if a.subs != nil {
		return a.subs(s), nil
	}
	return Subscriptions{}, nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func startClient(t *testing.T, a *testApplier, addrs ...string) *Client {
	t.Helper()
	c := New(Options{
		Addrs:       addrs,
		Node:        &corev3.Node{Id: "web-1-sidecar-proxy"},
		Apply:       a.apply,
		Logger:      testLogger(t),
		Backoff:     Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		NackBackoff: Backoff{Base: 300 * time.Millisecond, Max: time.Second},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

func listener(name string) *listenerv3.Listener { return &listenerv3.Listener{Name: name} }

func response(typeURL, version, nonce string, msgs ...proto.Message) *discoveryv3.DiscoveryResponse {
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: typeURL, VersionInfo: version, Nonce: nonce}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			panic(err)
		}
		resp.Resources = append(resp.Resources, a)
	}
	return resp
}

func wantRequest(t *testing.T, got *discoveryv3.DiscoveryRequest, want *discoveryv3.DiscoveryRequest) {
	t.Helper()
	if diff := cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreFields(&discoveryv3.DiscoveryRequest{}, "node")); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func nackDetail(msg string) *statuspb.Status {
	return &statuspb.Status{Code: int32(codes.InvalidArgument), Message: msg}
}

func TestSubscribeACKAndNACK(t *testing.T) {
	srv := startFakeADS(t)
	a := &testApplier{
		fail: func(s State) error {
			if _, bad := s.Listeners.Items["bad"]; bad {
				return errors.New(`listener "bad": unsupported network filter "x"`)
			}
			return nil
		},
		subs: func(s State) Subscriptions {
			var subs Subscriptions
			for name := range s.Listeners.Items {
				subs.Routes = append(subs.Routes, "route-of-"+name)
			}
			return subs
		},
	}
	c := startClient(t, a, srv.addr)
	st := srv.nextStream(t)

	// Wildcard CDS then LDS; the node only in the first request.
	first := st.next(t)
	if got := first.GetNode().GetId(); got != "web-1-sidecar-proxy" {
		t.Errorf("first request node.id = %q, want web-1-sidecar-proxy", got)
	}
	wantRequest(t, first, &discoveryv3.DiscoveryRequest{TypeUrl: ClusterType})
	lds := st.next(t)
	if lds.GetNode() != nil {
		t.Error("node sent again after the first request")
	}
	wantRequest(t, lds, &discoveryv3.DiscoveryRequest{TypeUrl: ListenerType})

	// A good LDS response is ACKed, then its routes are subscribed.
	st.send(t, response(ListenerType, "v1", "n1", listener("a")))
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: ListenerType, VersionInfo: "v1", ResponseNonce: "n1"})
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: RouteType, ResourceNames: []string{"route-of-a"}})

	// A rejected response is NACKed with the previous version.
	st.send(t, response(ListenerType, "v2", "n2", listener("a"), listener("bad")))
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: ListenerType, VersionInfo: "v1", ResponseNonce: "n2",
		ErrorDetail: nackDetail(`listener "bad": unsupported network filter "x"`)})
	if got := c.State().Listeners; got.Version != "v1" || len(got.Items) != 1 {
		t.Errorf("accepted listeners after NACK = %+v, want v1 with one listener", got)
	}
	ls := c.Status().Types[ListenerType]
	if ls.Version != "v1" || ls.LastNack == nil || ls.LastNack.Version != "v2" || !strings.Contains(ls.LastNack.Error, `listener "bad"`) {
		t.Errorf("listener status = %+v, last NACK %+v", ls, ls.LastNack)
	}

	// The same rejected version again: NACKed, but only after a delay.
	start := time.Now()
	st.send(t, response(ListenerType, "v2", "n3", listener("a"), listener("bad")))
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: ListenerType, VersionInfo: "v1", ResponseNonce: "n3",
		ErrorDetail: nackDetail(`listener "bad": unsupported network filter "x"`)})
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("repeated NACK sent after %v, want it delayed by the NACK backoff", elapsed)
	}

	// Routes are merged: a response naming one route keeps the others.
	st.send(t, response(RouteType, "r1", "n4", &routev3.RouteConfiguration{Name: "route-of-a"}))
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: RouteType, VersionInfo: "r1", ResponseNonce: "n4", ResourceNames: []string{"route-of-a"}})
	if !c.Status().Connected {
		t.Error("Status().Connected = false on an open stream")
	}
}

func TestNACKsInvalidResources(t *testing.T) {
	garbage := &anypb.Any{TypeUrl: ListenerType, Value: []byte{0xff, 0xff, 0xff}}
	wrongType, _ := anypb.New(&routev3.RouteConfiguration{Name: "r"})
	invalid, _ := anypb.New(&listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: ""}}}}})
	unnamed, _ := anypb.New(&listenerv3.Listener{})
	dup, _ := anypb.New(listener("d"))
	tests := []struct {
		name      string
		resources []*anypb.Any
		wantErr   string
	}{
		{"wrong type URL", []*anypb.Any{wrongType}, `resource 0: type "type.googleapis.com/envoy.config.route.v3.RouteConfiguration" in a type.googleapis.com/envoy.config.listener.v3.Listener response`},
		{"undecodable Any", []*anypb.Any{garbage}, `resource 0: undecodable listener`},
		{"ValidateAll failure", []*anypb.Any{invalid}, `listener "l": invalid: invalid Listener.FilterChains[0]`},
		{"no name", []*anypb.Any{unnamed}, `resource 0: listener without a name`},
		{"duplicate", []*anypb.Any{dup, dup}, `listener "d": sent twice in one response`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFakeADS(t)
			a := &testApplier{}
			startClient(t, a, srv.addr)
			st := srv.nextStream(t)
			st.next(t)
			st.next(t)
			st.send(t, &discoveryv3.DiscoveryResponse{TypeUrl: ListenerType, VersionInfo: "v1", Nonce: "n1", Resources: tt.resources})
			got := st.next(t)
			if got.GetErrorDetail().GetCode() != int32(codes.InvalidArgument) || !strings.Contains(got.GetErrorDetail().GetMessage(), tt.wantErr) {
				t.Errorf("NACK error_detail = %v, want INVALID_ARGUMENT containing %q", got.GetErrorDetail(), tt.wantErr)
			}
			if got.GetVersionInfo() != "" || got.GetResponseNonce() != "n1" {
				t.Errorf("NACK version %q nonce %q, want previous version \"\" and nonce n1", got.GetVersionInfo(), got.GetResponseNonce())
			}
			if len(a.states) != 0 {
				t.Errorf("applier called %d times for an invalid response", len(a.states))
			}
		})
	}
}

func TestReconnectResendsACKedVersions(t *testing.T) {
	srv := startFakeADS(t)
	a := &testApplier{subs: func(s State) Subscriptions {
		return Subscriptions{Routes: []string{"r"}, Endpoints: []string{"e"}}
	}}
	c := startClient(t, a, srv.addr)
	st := srv.nextStream(t)
	st.next(t)
	st.next(t)
	st.send(t, response(ClusterType, "c1", "n1"))
	st.next(t) // ACK
	st.next(t) // EDS subscription
	st.next(t) // RDS subscription
	st.send(t, response(ListenerType, "l1", "n2", listener("a")))
	st.next(t) // ACK
	close(st.kill)

	st = srv.nextStream(t)
	if got := st.next(t); got.GetNode().GetId() != "web-1-sidecar-proxy" {
		t.Errorf("first request on the new stream has node %v", got.GetNode())
	} else {
		wantRequest(t, got, &discoveryv3.DiscoveryRequest{TypeUrl: ClusterType, VersionInfo: "c1"})
	}
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: EndpointType, ResourceNames: []string{"e"}})
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: ListenerType, VersionInfo: "l1"})
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: RouteType, ResourceNames: []string{"r"}})
	if got := c.State().Listeners.Items; len(got) != 1 {
		t.Errorf("listeners kept across the reconnect = %v, want 1", got)
	}
}

func TestFailsOverToNextServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	srv := startFakeADS(t)
	c := startClient(t, &testApplier{}, dead, srv.addr)
	srv.nextStream(t).next(t)
	if s := c.Status(); s.Server != srv.addr {
		t.Errorf("Status().Server = %q, want %q", s.Server, srv.addr)
	}
}

func TestUnsubscribesRemovedNames(t *testing.T) {
	srv := startFakeADS(t)
	a := &testApplier{subs: func(s State) Subscriptions {
		var subs Subscriptions
		for name := range s.Clusters.Items {
			subs.Endpoints = append(subs.Endpoints, name)
		}
		return subs
	}}
	c := startClient(t, a, srv.addr)
	st := srv.nextStream(t)
	st.next(t)
	st.next(t)
	st.send(t, clusters("c1", "n1", "a", "b"))
	st.next(t) // ACK
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: EndpointType, ResourceNames: []string{"a", "b"}})
	st.send(t, loads("e1", "n2", "a", "b"))
	st.next(t) // ACK
	st.send(t, clusters("c2", "n3", "b"))
	st.next(t) // ACK
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: EndpointType, VersionInfo: "e1", ResponseNonce: "n2", ResourceNames: []string{"b"}})
	if got := c.State().Endpoints.Items; len(got) != 1 || got["b"] == nil {
		t.Errorf("endpoints after unsubscribing a = %v, want only b", got)
	}
	st.send(t, clusters("c3", "n4"))
	st.next(t) // ACK
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: EndpointType, VersionInfo: "e1", ResponseNonce: "n2"})
}

// TestSubscribesToReferencedSecrets: SDS rides the same stream; secrets
// are subscribed by name once the configuration references them, kept
// across updates and resent with their version after a reconnect.
func TestSubscribesToReferencedSecrets(t *testing.T) {
	srv := startFakeADS(t)
	a := &testApplier{subs: func(s State) Subscriptions {
		if len(s.Clusters.Items) > 0 {
			return Subscriptions{Secrets: []string{"weft-roots"}}
		}
		return Subscriptions{}
	}}
	c := startClient(t, a, srv.addr)
	st := srv.nextStream(t)
	st.next(t)
	st.next(t)
	st.send(t, clusters("c1", "n1", "a"))
	st.next(t) // ACK
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: SecretType, ResourceNames: []string{"weft-roots"}})
	st.send(t, response(SecretType, "s1", "n2", &tlsv3.Secret{Name: "weft-roots"}, &tlsv3.Secret{Name: "unasked"}))
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: SecretType, VersionInfo: "s1", ResponseNonce: "n2", ResourceNames: []string{"weft-roots"}})
	if got := c.State().Secrets.Items; len(got) != 1 || got["weft-roots"] == nil {
		t.Errorf("secrets = %v, want only the subscribed weft-roots", got)
	}
	close(st.kill)
	st = srv.nextStream(t)
	st.next(t) // CDS
	st.next(t) // LDS
	wantRequest(t, st.next(t), &discoveryv3.DiscoveryRequest{TypeUrl: SecretType, VersionInfo: "s1", ResourceNames: []string{"weft-roots"}})
}

func clusters(version, nonce string, names ...string) *discoveryv3.DiscoveryResponse {
	var msgs []proto.Message
	for _, n := range names {
		msgs = append(msgs, &clusterv3.Cluster{Name: n})
	}
	return response(ClusterType, version, nonce, msgs...)
}

func loads(version, nonce string, names ...string) *discoveryv3.DiscoveryResponse {
	var msgs []proto.Message
	for _, n := range names {
		msgs = append(msgs, &endpointv3.ClusterLoadAssignment{ClusterName: n})
	}
	return response(EndpointType, version, nonce, msgs...)
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		got := b.Delay(n)
		if got < want*8/10 || got > want {
			t.Errorf("Delay(%d) = %v, want within [80%%, 100%%] of %v", n, got, want)
		}
	}
}
