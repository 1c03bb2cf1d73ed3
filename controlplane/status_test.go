package controlplane

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/peer"
)

// TestStatusTrackerStreams: the tracker keeps a stream's state from its
// opening to its close, whether or not it ever sent a request; a
// response its client has not answered by the cutoff names the stream's
// client, and an ACK of that response clears it.
func TestStatusTrackerStreams(t *testing.T) {
	tests := []struct {
		name    string
		request bool // the stream sends a request and is answered
		ack     bool // the client ACKs the response
		want    map[string]string
	}{
		{name: "closed before any request"},
		{name: "response unanswered", request: true, want: map[string]string{"127.0.0.1:1234": "web-1"}},
		{name: "response ACKed", request: true, ack: true, want: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStatusTracker(slog.New(slog.DiscardHandler), newMetrics(prometheus.NewRegistry()), newProxylessClients())
			cb := s.callbacks()
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}})
			if err := cb.OnDeltaStreamOpen(ctx, 1, ""); err != nil {
				t.Fatal(err)
			}
			node := &corev3.Node{Id: "web-1"}
			if tc.request {
				req := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType}
				if err := cb.OnStreamDeltaRequest(1, req); err != nil {
					t.Fatal(err)
				}
				cb.OnStreamDeltaResponse(1, req, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "1", SystemVersionInfo: "v1"})
				if tc.ack {
					ack := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: "1"}
					if err := cb.OnStreamDeltaRequest(1, ack); err != nil {
						t.Fatal(err)
					}
					if got := s.ackedVersions(resourcev3.ClusterType)["web-1"]; got != "v1" {
						t.Errorf("ACKed version %q, want v1", got)
					}
				}
				got := s.unanswered(time.Now().Add(time.Hour))
				if len(got) != len(tc.want) || (len(tc.want) > 0 && got["127.0.0.1:1234"] != "web-1") {
					t.Errorf("unanswered %v, want %v", got, tc.want)
				}
			}
			cb.OnDeltaStreamClosed(1, node)
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.streams) != 0 || len(s.proxies) != 0 {
				t.Errorf("after the close: %d streams, %d proxies held, want none", len(s.streams), len(s.proxies))
			}
		})
	}
}
