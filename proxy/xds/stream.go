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
)

// stream is the protocol state of one ADS stream. All its methods run on
// the client's Run goroutine except receive.
type stream struct {
	c       *Client
	addr    string
	ctx     context.Context
	grpc    discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	sent    bool                               // the first request (with the node) is sent
	nonces  map[string]string                  // last response nonce per type URL
	asked   map[string]bool                    // types requested on this stream
	nacks   map[string]*nackRecord             // last NACK per type URL
	delayed chan *discoveryv3.DiscoveryRequest // repeated NACKs, after their delay
}

func newStream(c *Client, addr string) *stream {
	return &stream{
		c: c, addr: addr,
		nonces:  make(map[string]string),
		asked:   make(map[string]bool),
		nacks:   make(map[string]*nackRecord),
		delayed: make(chan *discoveryv3.DiscoveryRequest),
	}
}

// run opens the stream, subscribes and processes responses until the
// stream fails or ctx is cancelled.
func (s *stream) run(ctx context.Context, cc *grpc.ClientConn) (gotResponse bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	s.grpc, err = discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	defer stopNackTimers(s.nacks)
	s.c.status.setConnected(s.addr, true, nil)
	s.c.log.Info("xDS stream open", "server", s.addr)
	if err := s.subscribeAll(); err != nil {
		return false, err
	}
	return loop(ctx, cancel, s.grpc.Recv, s.handle, s.delayed, s.send)
}

// subscribeAll sends the initial request of every type, carrying the last
// ACKed versions so that a reconnect resumes where the last stream ended.
func (s *stream) subscribeAll() error {
	state := s.c.State()
	for _, t := range resourceTypes {
		names := s.c.subs.names(t.url)
		if !t.wildcard && len(names) == 0 {
			continue
		}
		req := &discoveryv3.DiscoveryRequest{TypeUrl: t.url, VersionInfo: state.Get(t.url).Version, ResourceNames: names}
		if err := s.send(req); err != nil {
			return err
		}
	}
	return nil
}

// handle applies one response and ACKs or NACKs it.
func (s *stream) handle(resp *discoveryv3.DiscoveryResponse) error {
	t := lookupType(resp.GetTypeUrl())
	if t == nil {
		reason := fmt.Sprintf("resource type %q was not subscribed to", resp.GetTypeUrl())
		return s.send(nackRequest(resp.GetTypeUrl(), "", resp.GetNonce(), nil, reason))
	}
	s.nonces[t.url] = resp.GetNonce()
	subs, err := s.c.apply(t, resp)
	if err != nil {
		return s.nack(t, resp, err)
	}
	if err := s.ack(t, resp); err != nil {
		return err
	}
	return s.resubscribe(subs)
}

func (s *stream) ack(t *resourceType, resp *discoveryv3.DiscoveryResponse) error {
	clearNack(s.nacks, t.url)
	s.c.status.ack(t.url, resp.GetVersionInfo(), resp.GetNonce())
	if f := s.c.opts.OnAck; f != nil {
		f(t.url)
	}
	s.c.log.Debug("ACK", "type", t.url, "version", resp.GetVersionInfo(), "resources", len(resp.GetResources()))
	return s.send(&discoveryv3.DiscoveryRequest{
		TypeUrl:       t.url,
		VersionInfo:   resp.GetVersionInfo(),
		ResponseNonce: resp.GetNonce(),
		ResourceNames: s.c.subs.names(t.url),
	})
}

// nack rejects a response, keeping the previous version. An identical
// rejection of the same version is sent after a growing delay instead of
// at once, so a server that re-sends rejected config cannot spin us.
func (s *stream) nack(t *resourceType, resp *discoveryv3.DiscoveryResponse, cause error) error {
	reason := cause.Error()
	s.c.status.nack(t.url, resp.GetVersionInfo(), resp.GetNonce(), reason)
	if f := s.c.opts.OnNack; f != nil {
		f(t.url)
	}
	req := nackRequest(t.url, s.c.State().Get(t.url).Version, resp.GetNonce(), s.c.subs.names(t.url), reason)
	delay, now := paceNack(s.nacks, t.url, resp.GetVersionInfo(), reason, s.c.opts.NackBackoff)
	if now {
		s.c.log.Warn("rejected xDS update (NACK)", "type", t.url, "version", resp.GetVersionInfo(), "error", reason)
		return s.send(req)
	}
	s.c.log.Debug("same xDS update rejected again; delaying NACK", "type", t.url, "version", resp.GetVersionInfo(), "delay", delay)
	s.nacks[t.url].timer = time.AfterFunc(delay, func() {
		select {
		case s.delayed <- req:
		case <-s.ctx.Done():
		}
	})
	return nil
}

func nackRequest(typeURL, version, nonce string, names []string, reason string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{
		TypeUrl:       typeURL,
		VersionInfo:   version,
		ResponseNonce: nonce,
		ResourceNames: names,
		ErrorDetail:   &statuspb.Status{Code: int32(codes.InvalidArgument), Message: reason},
	}
}

// resubscribe sends new RDS/EDS subscriptions when the applied
// configuration references different names.
func (s *stream) resubscribe(subs Subscriptions) error {
	for _, url := range []string{EndpointType, RouteType, SecretType} {
		names := subs.names(url)
		if slices.Equal(names, s.c.subs.names(url)) {
			continue
		}
		s.c.setSubscriptions(url, names)
		if len(names) == 0 && !s.asked[url] {
			continue
		}
		err := s.send(&discoveryv3.DiscoveryRequest{
			TypeUrl:       url,
			VersionInfo:   s.c.State().Get(url).Version,
			ResponseNonce: s.nonces[url],
			ResourceNames: names,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *stream) send(req *discoveryv3.DiscoveryRequest) error {
	if !s.sent {
		req.Node = s.c.opts.Node
		s.sent = true
	}
	s.asked[req.GetTypeUrl()] = true
	if err := s.grpc.Send(req); err != nil {
		return fmt.Errorf("send %s request: %w", req.GetTypeUrl(), err)
	}
	return nil
}
