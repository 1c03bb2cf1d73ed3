package main

import (
	"context"
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
)

// subscribedTypes are the types every simulated proxy subscribes to, as a
// wildcard: it gets every resource of its snapshot, as weft-proxy does once
// it has named its routes, endpoints and secrets.
var subscribedTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.SecretType}

// runSotW keeps one state-of-the-world ADS stream open for c, ACKing every
// response, until ctx is done or the stream fails.
func runSotW(ctx context.Context, cc *grpc.ClientConn, c *client, t *totals) error {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	node := &corev3.Node{Id: c.id, Cluster: "bench"}
	for i, typeURL := range subscribedTypes {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typeURL}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("subscribe %s: %w", typeURL, err)
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		t.responses.Add(1)
		ack := &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		if err := stream.Send(ack); err != nil {
			return fmt.Errorf("ACK %s: %w", resp.GetTypeUrl(), err)
		}
		c.ack(resp.GetTypeUrl(), resp.GetVersionInfo(), time.Now())
	}
}

// runDelta is runSotW over incremental ADS.
func runDelta(ctx context.Context, cc *grpc.ClientConn, c *client, t *totals) error {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("open delta stream: %w", err)
	}
	node := &corev3.Node{Id: c.id, Cluster: "bench"}
	for i, typeURL := range subscribedTypes {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("subscribe %s: %w", typeURL, err)
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		t.responses.Add(1)
		ack := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
		if err := stream.Send(ack); err != nil {
			return fmt.Errorf("ACK %s: %w", resp.GetTypeUrl(), err)
		}
		c.ack(resp.GetTypeUrl(), resp.GetSystemVersionInfo(), time.Now())
	}
}
