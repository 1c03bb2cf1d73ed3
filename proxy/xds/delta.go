package xds

import (
	"context"
	"fmt"
	"slices"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// deltaStream is the protocol state of one incremental (delta) ADS
// stream: the server sends only what changed (resources added or updated
// with their versions, and names removed), and the client subscribes and
// unsubscribes names instead of re-sending whole lists. All its methods
// run on the client's Run goroutine except receive.
type deltaStream struct {
	c       *Client
	addr    string
	ctx     context.Context
	grpc    discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	sent    bool // the first request (with the node) is sent
	nacks   map[string]*nackRecord
	delayed chan *discoveryv3.DeltaDiscoveryRequest
}

func newDeltaStream(c *Client, addr string) *deltaStream {
	return &deltaStream{
		c: c, addr: addr,
		nacks:   make(map[string]*nackRecord),
		delayed: make(chan *discoveryv3.DeltaDiscoveryRequest),
	}
}

// run opens the stream, subscribes and processes responses until the
// stream fails or ctx is cancelled.
func (s *deltaStream) run(ctx context.Context, cc *grpc.ClientConn) (gotResponse bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	s.grpc, err = discoveryv3.NewAggregatedDiscoveryServiceClient(cc).DeltaAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	defer stopNackTimers(s.nacks)
	s.c.status.setConnected(s.addr, true, nil)
	s.c.log.Info("xDS stream open", "server", s.addr, "protocol", "delta")
	if err := s.subscribeAll(); err != nil {
		return false, err
	}
	return loop(ctx, cancel, s.grpc.Recv, s.handle, s.delayed, s.send)
}

// subscribeAll sends the initial request of every type: a wildcard
// subscription for listeners and clusters, the current names for the
// others, and the versions of the resources the client holds, so that the
// server sends only what changed since (after a reconnect).
func (s *deltaStream) subscribeAll() error {
	for _, t := range resourceTypes {
		names := s.c.subs.names(t.url)
		if !t.wildcard && len(names) == 0 {
			continue
		}
		req := &discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:                 t.url,
			ResourceNamesSubscribe:  names,
			InitialResourceVersions: s.c.heldVersions(t.url),
		}
		if err := s.send(req); err != nil {
			return err
		}
	}
	return nil
}

// handle applies one response and ACKs or NACKs it.
func (s *deltaStream) handle(resp *discoveryv3.DeltaDiscoveryResponse) error {
	t := lookupType(resp.GetTypeUrl())
	if t == nil {
		reason := fmt.Sprintf("resource type %q was not subscribed to", resp.GetTypeUrl())
		return s.send(deltaNack(resp.GetTypeUrl(), resp.GetNonce(), reason))
	}
	cur := s.c.State().Get(t.url)
	got, versions, err := decodeDelta(t, resp, cur)
	if err != nil {
		return s.nack(t, resp, err)
	}
	next := cur.clone()
	next.Version, next.Received = resp.GetSystemVersionInfo(), true
	next.remove(resp.GetRemovedResources())
	next.add(got)
	if !t.wildcard {
		next = next.keepOnly(s.c.subs.names(t.url))
	}
	subs, err := s.c.install(t, next)
	if err != nil {
		return s.nack(t, resp, err)
	}
	s.c.recordVersions(t.url, versions, resp.GetRemovedResources())
	if err := s.ack(t, resp); err != nil {
		return err
	}
	return s.resubscribe(subs)
}

// decodeDelta unpacks and validates the resources of one delta response,
// returning them and their versions by name. As decode, it keeps the
// message of prev (the accepted resources of the type) for a resource
// sent again with the same bytes.
func decodeDelta(t *resourceType, resp *discoveryv3.DeltaDiscoveryResponse, prev Resources) (Resources, map[string]string, error) {
	got := Resources{Items: make(map[string]proto.Message, len(resp.GetResources())), digests: make(map[string]digest, len(resp.GetResources()))}
	versions := make(map[string]string, len(resp.GetResources()))
	for i, r := range resp.GetResources() {
		u, err := decodeOne(t, r.GetResource(), prev.named(r.GetName()))
		if err != nil {
			return Resources{}, nil, fmt.Errorf("resource %d (%q): %w", i, r.GetName(), err)
		}
		name := t.name(u.msg)
		switch {
		case name == "":
			return Resources{}, nil, fmt.Errorf("resource %d: %s without a name", i, t.kind)
		case r.GetName() != "" && r.GetName() != name:
			return Resources{}, nil, fmt.Errorf("%s %q: sent under the name %q", t.kind, name, r.GetName())
		}
		if _, dup := got.Items[name]; dup {
			return Resources{}, nil, fmt.Errorf("%s %q: sent twice in one response", t.kind, name)
		}
		if err := u.validate(t, name); err != nil {
			return Resources{}, nil, err
		}
		got.Items[name], got.digests[name], versions[name] = u.msg, u.sum, r.GetVersion()
	}
	for _, name := range resp.GetRemovedResources() {
		if _, both := got.Items[name]; both {
			return Resources{}, nil, fmt.Errorf("%s %q: both sent and removed in one response", t.kind, name)
		}
	}
	return got, versions, nil
}

func (s *deltaStream) ack(t *resourceType, resp *discoveryv3.DeltaDiscoveryResponse) error {
	clearNack(s.nacks, t.url)
	s.c.status.ack(t.url, resp.GetSystemVersionInfo(), resp.GetNonce())
	if f := s.c.opts.OnAck; f != nil {
		f(t.url)
	}
	s.c.log.Debug("ACK", "type", t.url, "version", resp.GetSystemVersionInfo(),
		"updated", len(resp.GetResources()), "removed", len(resp.GetRemovedResources()))
	return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t.url, ResponseNonce: resp.GetNonce()})
}

// nack rejects a response, keeping the previous resources; identical
// repeats are paced as on state-of-the-world streams.
func (s *deltaStream) nack(t *resourceType, resp *discoveryv3.DeltaDiscoveryResponse, cause error) error {
	reason := cause.Error()
	s.c.status.nack(t.url, resp.GetSystemVersionInfo(), resp.GetNonce(), reason)
	if f := s.c.opts.OnNack; f != nil {
		f(t.url)
	}
	req := deltaNack(t.url, resp.GetNonce(), reason)
	delay, now := paceNack(s.nacks, t.url, resp.GetSystemVersionInfo(), reason, s.c.opts.NackBackoff)
	if now {
		s.c.log.Warn("rejected xDS update (NACK)", "type", t.url, "version", resp.GetSystemVersionInfo(), "error", reason)
		return s.send(req)
	}
	s.c.log.Debug("same xDS update rejected again; delaying NACK", "type", t.url, "version", resp.GetSystemVersionInfo(), "delay", delay)
	s.nacks[t.url].timer = time.AfterFunc(delay, func() {
		select {
		case s.delayed <- req:
		case <-s.ctx.Done():
		}
	})
	return nil
}

func deltaNack(typeURL, nonce, reason string) *discoveryv3.DeltaDiscoveryRequest {
	return &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:       typeURL,
		ResponseNonce: nonce,
		ErrorDetail:   &statuspb.Status{Code: int32(codes.InvalidArgument), Message: reason},
	}
}

// resubscribe subscribes the names the applied configuration newly
// references and unsubscribes those it no longer does.
func (s *deltaStream) resubscribe(subs Subscriptions) error {
	for _, url := range []string{EndpointType, RouteType, SecretType} {
		old, names := s.c.subs.names(url), subs.names(url)
		if slices.Equal(old, names) {
			continue
		}
		s.c.setSubscriptions(url, names)
		added, removed := setDiff(names, old), setDiff(old, names)
		s.c.recordVersions(url, nil, removed)
		err := s.send(&discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:                  url,
			ResourceNamesSubscribe:   added,
			ResourceNamesUnsubscribe: removed,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// setDiff returns the names of a (sorted) not in b (sorted).
func setDiff(a, b []string) []string {
	var out []string
	for _, n := range a {
		if _, ok := slices.BinarySearch(b, n); !ok {
			out = append(out, n)
		}
	}
	return out
}

func (s *deltaStream) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	if !s.sent {
		req.Node = s.c.opts.Node
		s.sent = true
	}
	if err := s.grpc.Send(req); err != nil {
		return fmt.Errorf("send %s delta request: %w", req.GetTypeUrl(), err)
	}
	return nil
}
