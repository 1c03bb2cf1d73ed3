package controlplane

import (
	"strconv"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// adsServer is the ADS service: go-control-plane's server for SotW
// streams, deltaServer for delta streams.
type adsServer struct {
	serverv3.Server
	delta *deltaServer
}

// DeltaAggregatedResources serves a delta ADS stream.
func (a adsServer) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return a.delta.serve(s)
}

// deltaServer serves delta ADS streams with one goroutine per stream,
// the gRPC handler's, where go-control-plane's delta server runs two (its
// loop and a goroutine that only receives requests): at 10,000 sidecars
// that was 10,000 goroutines and their stacks, about 58 MiB.
//
// The handler's goroutine receives requests and answers them: it opens
// each type's watch and sends what the cache answers at once. A watch
// answered later (deltaCache.set, on the publish goroutine) hands its
// response to the stream (deliver), and a goroutine started for the
// occasion sends the stream's pending responses and ends: a stream that
// has nothing to send has no goroutine but the handler. Sends are
// serialized per stream (sendMu), in the order the responses were
// delivered, and a request is processed only after the responses
// delivered before it were sent, as in go-control-plane's server.
//
// The protocol is go-control-plane's delta server's (v0.14): the same
// subscriptions (stream.Subscription, legacy wildcard on, in a
// deltaSubscription that holds a wildcard's state as a list), a nonce per
// response counting up from 1, the node remembered from the first
// request that names it, the same callbacks in the same order, and the
// type URL required on every request. What differs is when the stream
// ends: a failed send ends it when the handler next receives (a send
// fails when the connection is gone, which ends the receive too), and
// when the control plane stops, shutdown closes the connections of the
// streams still open (a stream blocked in receiving cannot be ended from
// its own side), where go-control-plane's handlers returned.
type deltaServer struct {
	cache     *nodeCache
	callbacks serverv3.Callbacks
	// closeConn closes the client connection of the peer at addr, to end
	// its streams at shutdown.
	closeConn func(addr string)

	nextID  atomic.Int64
	streams sync.Map // stream ID → *deltaServerStream
}

// serve runs one stream until it ends, receiving on the calling
// goroutine (grpc-go's transport; the lean one runs its streams detached,
// leanxds.go).
func (d *deltaServer) serve(gs discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	st, err := d.open(gs)
	defer d.closeStream(st) // reports the stream closed even when opening it failed
	if err != nil {
		return err
	}
	for {
		req, err := gs.Recv()
		if err != nil {
			return st.ended(err)
		}
		if err := st.handle(req); err != nil {
			return err
		}
	}
}

// open starts serving a stream; the caller closes it (closeStream), even
// when open fails.
func (d *deltaServer) open(gs discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) (*deltaServerStream, error) {
	st := &deltaServerStream{server: d, grpc: gs, id: d.nextID.Add(1), node: &corev3.Node{}, subs: map[string]*deltaSub{}}
	if p, ok := peer.FromContext(gs.Context()); ok && p.Addr != nil {
		st.peer = p.Addr.String()
	}
	d.streams.Store(st.id, st)
	return st, d.callbacks.OnDeltaStreamOpen(gs.Context(), st.id, resourcev3.AnyType)
}

// closeStream ends a stream open returned.
func (d *deltaServer) closeStream(st *deltaServerStream) {
	st.close()
	d.streams.Delete(st.id)
}

// ended is the error a stream whose receive failed with err ends with:
// a failed send's, a request the transport refused, or none (the client
// ended the stream, or its connection is gone).
func (st *deltaServerStream) ended(err error) error {
	if sendErr := st.sendError(); sendErr != nil {
		return sendErr
	}
	if refusedRequest(err) {
		return err // a request the transport could not read, named for the client
	}
	return nil
}

// refusedRequest reports whether a receive failed on a request the
// transport refused (too large, compressed, malformed), not on the end
// of the stream or of its connection.
func refusedRequest(err error) bool {
	switch status.Code(err) {
	case codes.Unimplemented, codes.ResourceExhausted, codes.Internal:
		return true
	}
	return false
}

// endAll closes the connections of every open stream: the control plane
// is stopping.
func (d *deltaServer) endAll() {
	d.streams.Range(func(_, v any) bool {
		if st := v.(*deltaServerStream); st.peer != "" {
			d.closeConn(st.peer)
		}
		return true
	})
}

// deltaServerStream is one delta ADS stream.
type deltaServerStream struct {
	server *deltaServer
	grpc   discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	id     int64
	peer   string

	// sendMu is held by whichever goroutine sends responses or processes
	// a request: the handler's, or the one started to send responses
	// delivered later. It guards the fields below it.
	sendMu sync.Mutex
	node   *corev3.Node
	nonce  int64
	subs   map[string]*deltaSub // by type URL

	// q guards the queue of responses delivered and not yet sent.
	q        sync.Mutex
	pending  []cachev3.DeltaResponse
	handling bool  // the handler is processing a request and sends what arrives
	flushing bool  // a goroutine is sending pending responses
	closed   bool  // the stream ended: responses are dropped
	sendErr  error // the first failed send, which ends the stream
}

// deltaSub is a stream's subscription to one type and its open watch.
type deltaSub struct {
	sub    *deltaSubscription
	cancel func()
}

// handle processes one request: the responses delivered before it are
// sent first, then the type's watch is opened again with the updated
// subscription, and what the cache answers at once is sent.
func (st *deltaServerStream) handle(req *discoveryv3.DeltaDiscoveryRequest) error {
	st.q.Lock()
	st.handling = true
	st.q.Unlock()
	st.sendMu.Lock()
	defer st.handled()
	defer st.sendMu.Unlock()
	if err := st.sendPendingLocked(); err != nil {
		return err
	}
	if err := st.server.callbacks.OnStreamDeltaRequest(st.id, req); err != nil {
		return err
	}
	// The node may be sent only on the first request.
	if req.GetNode() != nil {
		st.node = req.GetNode()
	} else {
		req.Node = st.node
	}
	typeURL := req.GetTypeUrl()
	if typeURL == "" {
		return status.Errorf(codes.InvalidArgument, "type URL is required for ADS")
	}
	s := st.subs[typeURL]
	if s == nil {
		// The first request of the type: its initial versions, and a
		// wildcard subscription when it names no resource (legacy).
		s = &deltaSub{sub: newDeltaSubscription(req)}
		st.subs[typeURL] = s
	} else {
		if s.cancel != nil {
			s.cancel()
			s.cancel = nil
		}
		// A response the watch delivered before it was cancelled is
		// sent, and its versions recorded, before the subscription
		// changes.
		if err := st.sendPendingLocked(); err != nil {
			return err
		}
		s.sub.update(req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe())
	}
	cancel, err := st.server.cache.watchDelta(req, s.sub, st.deliver)
	if err != nil {
		return err
	}
	s.cancel = cancel
	return st.sendPendingLocked()
}

// handled ends the handler's turn: responses delivered after its last
// send get a goroutine of their own.
func (st *deltaServerStream) handled() {
	st.q.Lock()
	st.handling = false
	start := st.startFlushLocked()
	st.q.Unlock()
	if start {
		go st.flush()
	}
}

// deliver queues a watch's response. It is called with the cache's locks
// held, from the publish goroutine or from the handler's while it opens a
// watch, so it never blocks: the handler sends what it delivers itself,
// and otherwise a goroutine is started to send it.
func (st *deltaServerStream) deliver(resp cachev3.DeltaResponse) {
	st.q.Lock()
	if st.closed {
		st.q.Unlock()
		return
	}
	st.pending = append(st.pending, resp)
	start := st.startFlushLocked()
	st.q.Unlock()
	if start {
		go st.flush()
	}
}

// startFlushLocked reports whether a goroutine must be started to send
// the pending responses, and marks it started. Callers hold st.q.
func (st *deltaServerStream) startFlushLocked() bool {
	if len(st.pending) == 0 || st.handling || st.flushing || st.closed {
		return false
	}
	st.flushing = true
	return true
}

// flush sends the pending responses, unless the handler takes over.
func (st *deltaServerStream) flush() {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	for {
		st.q.Lock()
		resp := st.popLocked(true)
		if resp == nil {
			st.flushing = false
		}
		st.q.Unlock()
		if resp == nil {
			return
		}
		if err := st.send(resp); err != nil {
			st.q.Lock()
			st.sendErr = err
			st.flushing = false
			st.q.Unlock()
			return
		}
	}
}

// sendPendingLocked sends the pending responses in order. Callers hold
// st.sendMu.
func (st *deltaServerStream) sendPendingLocked() error {
	for {
		st.q.Lock()
		err, resp := st.sendErr, st.popLocked(false)
		st.q.Unlock()
		if err != nil {
			return err
		}
		if resp == nil {
			return nil
		}
		if err := st.send(resp); err != nil {
			return err
		}
	}
}

// popLocked takes the next pending response; nil when there is none, the
// stream ended, a send failed, or (yield) the handler is processing a
// request and sends what is pending itself. Callers hold st.q.
func (st *deltaServerStream) popLocked(yield bool) cachev3.DeltaResponse {
	if len(st.pending) == 0 || st.closed || st.sendErr != nil || (yield && st.handling) {
		if len(st.pending) == 0 {
			st.pending = nil // let the queue's array go
		}
		return nil
	}
	resp := st.pending[0]
	st.pending[0] = nil
	st.pending = st.pending[1:]
	return resp
}

// send sends one response with the stream's next nonce and records what
// the client now holds of its type. Callers hold st.sendMu.
func (st *deltaServerStream) send(resp cachev3.DeltaResponse) error {
	msg, err := resp.GetDeltaDiscoveryResponse()
	if err != nil {
		return err
	}
	st.nonce++
	msg.Nonce = strconv.FormatInt(st.nonce, 10)
	req := resp.GetDeltaRequest()
	st.server.callbacks.OnStreamDeltaResponse(st.id, req, msg)
	if err := st.grpc.Send(msg); err != nil {
		return err
	}
	if s := st.subs[req.GetTypeUrl()]; s != nil {
		s.sub.sent(resp)
	}
	return nil
}

// sendError is the error of a failed send, if one failed.
func (st *deltaServerStream) sendError() error {
	st.q.Lock()
	defer st.q.Unlock()
	return st.sendErr
}

// close cancels the stream's watches and drops what they deliver, waits
// for a send in progress, and reports the stream closed.
func (st *deltaServerStream) close() {
	st.q.Lock()
	st.closed = true
	st.pending = nil
	st.q.Unlock()
	st.sendMu.Lock()
	for _, s := range st.subs {
		if s.cancel != nil {
			s.cancel()
		}
	}
	node := st.node
	st.sendMu.Unlock()
	st.server.callbacks.OnDeltaStreamClosed(st.id, node)
}
