package controlplane

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/peer"
)

// ProxyStatus is what the control plane knows of one connected proxy.
type ProxyStatus struct {
	ID        string `json:"id"`
	Proxyless bool   `json:"proxyless,omitempty"`
	// Kind is a gateway's Consul kind (mesh-gateway, ingress-gateway);
	// empty for sidecars. Routes say what a gateway routes where.
	Kind      string               `json:"kind,omitempty"`
	Routes    []string             `json:"routes,omitempty"`
	Protocol  string               `json:"protocol"` // of the latest stream: "delta" or "sotw"
	Streams   int                  `json:"streams"`
	Connected time.Time            `json:"connected_since"`
	Types     map[string]*TypeSync `json:"types"`
	// Problems are what the control plane could not translate for the
	// proxy, or a config entry sets that it does not apply, each naming
	// the registration field or entry (docs/consul.md).
	Problems []string `json:"problems,omitempty"`
}

// TypeSync is the state of one resource type on one proxy.
type TypeSync struct {
	AckedVersion string    `json:"acked_version,omitempty"`
	AckedAt      time.Time `json:"acked_at,omitzero"`
	LastNack     string    `json:"last_nack,omitempty"`
	NackVersion  string    `json:"nack_version,omitempty"`
	NackAt       time.Time `json:"nack_at,omitzero"`

	// A proxyless client subscribes by name. Subscribed are the names it
	// asked for, Sent those it was sent (and holds), Missing those it
	// asked for and was not sent: the mesh has no such resource, or the
	// answer is on its way. All are sorted; none is kept for sidecars.
	Subscribed  []string  `json:"subscribed,omitempty"`
	Sent        []string  `json:"sent,omitempty"`
	Missing     []string  `json:"missing,omitempty"`
	SentVersion string    `json:"sent_version,omitempty"`
	SentAt      time.Time `json:"sent_at,omitzero"`
}

// statusTracker records stream and ACK/NACK state from go-control-plane's
// callbacks, which run on the streams' goroutines.
type statusTracker struct {
	logger    *slog.Logger
	metrics   *metrics
	proxyless *proxylessClients

	mu      sync.Mutex
	streams map[int64]*streamStatus
	proxies map[string]*ProxyStatus
	// named are proxyless clients' subscriptions by proxy ID, then by
	// stream and type.
	named map[string]map[sentKey]*namedSubscription
}

// streamStatus is what the tracker knows of one stream.
type streamStatus struct {
	// proxy is the ID of the stream's proxy, once registered by its
	// first request (typeSync).
	proxy      string
	registered bool
	peer       string // the client's address
	// sent is the last response of each type, in the order of the
	// types' first responses (a stream has a few types).
	sent []sentResponse
}

type sentKey struct {
	stream  int64
	typeURL string
}

// sentResponse is the last response of a stream and type: at is when it
// was sent, answered whether the client has ACKed or NACKed it since.
type sentResponse struct {
	typeURL        string
	nonce, version string
	at             time.Time
	answered       bool
}

// lastSent is the stream's last response of typeURL, nil if none.
func (st *streamStatus) lastSent(typeURL string) *sentResponse {
	if st == nil {
		return nil
	}
	for i := range st.sent {
		if st.sent[i].typeURL == typeURL {
			return &st.sent[i]
		}
	}
	return nil
}

// stream returns a stream's status, creating it. Callers hold s.mu.
func (s *statusTracker) stream(streamID int64) *streamStatus {
	st := s.streams[streamID]
	if st == nil {
		st = &streamStatus{}
		s.streams[streamID] = st
	}
	return st
}

// proxyOf is the ID of a stream's proxy, "" before its first request.
// Callers hold s.mu.
func (s *statusTracker) proxyOf(streamID int64) string {
	if st := s.streams[streamID]; st != nil {
		return st.proxy
	}
	return ""
}

func newStatusTracker(logger *slog.Logger, m *metrics, pl *proxylessClients) *statusTracker {
	return &statusTracker{logger: logger, metrics: m, proxyless: pl, streams: map[int64]*streamStatus{}, proxies: map[string]*ProxyStatus{},
		named: map[string]map[sentKey]*namedSubscription{}}
}

// callbacks hooks the tracker into go-control-plane's servers. The SotW
// and delta servers number their streams independently, both from 1, so
// the tracker keys delta streams by the negated ID to keep them apart.
func (s *statusTracker) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			s.streamOpened(ctx, id)
			return nil
		},
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			s.streamOpened(ctx, deltaKey(id))
			return nil
		},
		StreamClosedFunc:   s.streamClosed,
		StreamRequestFunc:  s.request,
		StreamResponseFunc: s.response,
		DeltaStreamClosedFunc: func(id int64, node *corev3.Node) {
			s.streamClosed(deltaKey(id), node)
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			return s.deltaRequest(deltaKey(id), req)
		},
		StreamDeltaResponseFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			s.deltaResponse(deltaKey(id), req, resp)
		},
	}
}

// deltaKey is the tracker's key of delta stream id.
func deltaKey(id int64) int64 { return -id }

// typeSync returns the status of typeURL on the proxy of a stream,
// registering the stream on its first request. Callers hold s.mu.
func (s *statusTracker) typeSync(streamID int64, node *corev3.Node, typeURL string) (string, *TypeSync) {
	st := s.stream(streamID)
	id := st.proxy
	if !st.registered {
		id = node.GetId()
		st.proxy, st.registered = id, true
		p := s.proxies[id]
		if p == nil {
			p = &ProxyStatus{ID: id, Connected: time.Now(), Types: map[string]*TypeSync{}}
			s.proxies[id] = p
		}
		p.Streams++
		p.Protocol = "sotw"
		if streamID < 0 {
			p.Protocol = "delta"
		}
		if isProxyless(node) {
			p.Proxyless = true
			s.proxyless.add(id)
		}
		s.metrics.connected.Inc()
		s.logger.Info("proxy connected", "proxy", id, "stream", streamID, "protocol", p.Protocol, "proxyless", p.Proxyless)
	}
	p := s.proxies[id]
	t := p.Types[typeURL]
	if t == nil {
		t = &TypeSync{}
		p.Types[typeURL] = t
	}
	return id, t
}

// request handles a state-of-the-world request: a subscription, an ACK or
// a NACK.
func (s *statusTracker) request(streamID int64, req *discoveryv3.DiscoveryRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, t := s.typeSync(streamID, req.GetNode(), req.GetTypeUrl())
	if n := s.namedSub(streamID, req.GetTypeUrl()); n != nil {
		n.sotwRequest(req.GetResourceNames())
		s.reportNamed(id, req.GetTypeUrl())
	}
	if req.GetResponseNonce() == "" {
		return nil // a subscription, not an answer to a response
	}
	s.answered(streamID, req.GetTypeUrl(), req.GetResponseNonce())
	if d := req.GetErrorDetail(); d != nil {
		rejected := req.GetVersionInfo()
		if r := s.streams[streamID].lastSent(req.GetTypeUrl()); r != nil && r.nonce == req.GetResponseNonce() {
			rejected = r.version
			// go-control-plane answers a request whose version differs
			// from the snapshot's by sending the snapshot again, so a NACK
			// would loop. Acknowledging the rejected version to the cache
			// makes it wait for the next change instead; the proxy keeps
			// its last good config meanwhile.
			req.VersionInfo = rejected
		}
		s.nacked(id, t, req.GetTypeUrl(), rejected, d.GetMessage())
		return nil
	}
	s.acked(id, t, req.GetTypeUrl(), req.GetVersionInfo())
	return nil
}

// deltaRequest handles an incremental request. Delta ACKs carry no version:
// the version is that of the response whose nonce they answer.
func (s *statusTracker) deltaRequest(streamID int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, t := s.typeSync(streamID, req.GetNode(), req.GetTypeUrl())
	if n := s.namedSub(streamID, req.GetTypeUrl()); n != nil {
		n.deltaRequest(req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe())
		s.reportNamed(id, req.GetTypeUrl())
	}
	r := s.streams[streamID].lastSent(req.GetTypeUrl())
	if req.GetResponseNonce() == "" || r == nil || r.nonce != req.GetResponseNonce() {
		return nil
	}
	s.answered(streamID, req.GetTypeUrl(), req.GetResponseNonce())
	if d := req.GetErrorDetail(); d != nil {
		s.nacked(id, t, req.GetTypeUrl(), r.version, d.GetMessage())
		return nil
	}
	s.acked(id, t, req.GetTypeUrl(), r.version)
	return nil
}

func (s *statusTracker) acked(id string, t *TypeSync, typeURL, version string) {
	t.AckedVersion, t.AckedAt = version, time.Now()
	s.metrics.acked(id, typeURL, version)
}

func (s *statusTracker) nacked(id string, t *TypeSync, typeURL, version, msg string) {
	s.logger.Warn("proxy rejected configuration", "proxy", id, "type", typeURL,
		"rejected_version", version, "kept_version", t.AckedVersion, "error", msg)
	t.LastNack, t.NackVersion, t.NackAt = msg, version, time.Now()
	s.metrics.nacks.WithLabelValues(shortType(typeURL)).Inc()
}

func (s *statusTracker) response(_ context.Context, streamID int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	var names []string
	if s.isProxyless(streamID) {
		names = resourceNames(resp) // decoded outside the lock
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	typeURL := req.GetTypeUrl()
	s.sentResponse(streamID, typeURL, resp.GetNonce(), resp.GetVersionInfo())
	if n := s.namedSub(streamID, typeURL); n != nil {
		n.sotwResponse(names)
		s.reportSent(streamID, typeURL, resp.GetVersionInfo())
	}
}

func (s *statusTracker) deltaResponse(streamID int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typeURL := req.GetTypeUrl()
	s.sentResponse(streamID, typeURL, resp.GetNonce(), resp.GetSystemVersionInfo())
	if n := s.namedSub(streamID, typeURL); n != nil {
		n.deltaResponse(resp)
		s.reportSent(streamID, typeURL, resp.GetSystemVersionInfo())
	}
}

// sentResponse records a response. Callers hold s.mu.
func (s *statusTracker) sentResponse(streamID int64, typeURL, nonce, version string) {
	s.metrics.pushes.WithLabelValues(shortType(typeURL)).Inc()
	st := s.streams[streamID]
	if st == nil {
		return // closed
	}
	r := st.lastSent(typeURL)
	if r == nil {
		st.sent = append(st.sent, sentResponse{typeURL: typeURL})
		r = &st.sent[len(st.sent)-1]
	}
	r.nonce, r.version, r.at, r.answered = nonce, version, time.Now(), false
}

// streamOpened notes a stream's client address, which a stalled stream
// is disconnected by.
func (s *statusTracker) streamOpened(ctx context.Context, streamID int64) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream(streamID).peer = p.Addr.String()
}

// answered marks a stream's last response of typeURL as ACKed or NACKed
// when nonce is its. Callers hold s.mu.
func (s *statusTracker) answered(streamID int64, typeURL, nonce string) {
	if r := s.streams[streamID].lastSent(typeURL); r != nil && r.nonce == nonce {
		r.answered = true
	}
}

// unanswered returns the client addresses of streams with a response
// sent before cutoff that the client has neither ACKed nor NACKed: it
// stopped reading, or stopped answering.
func (s *statusTracker) unanswered(cutoff time.Time) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, st := range s.streams {
		for _, r := range st.sent {
			if !r.answered && r.at.Before(cutoff) && st.peer != "" {
				out[st.peer] = st.proxy
			}
		}
	}
	return out
}

// isProxyless reports whether a stream is a proxyless client's.
func (s *statusTracker) isProxyless(streamID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[s.proxyOf(streamID)]
	return p != nil && p.Proxyless
}

// namedSub returns the subscription to typeURL of a proxyless client's
// stream, nil for a sidecar's. Callers hold s.mu.
func (s *statusTracker) namedSub(streamID int64, typeURL string) *namedSubscription {
	id := s.proxyOf(streamID)
	if p := s.proxies[id]; p == nil || !p.Proxyless {
		return nil
	}
	subs := s.named[id]
	if subs == nil {
		subs = map[sentKey]*namedSubscription{}
		s.named[id] = subs
	}
	k := sentKey{streamID, typeURL}
	n := subs[k]
	if n == nil {
		n = &namedSubscription{}
		subs[k] = n
	}
	return n
}

// reportSent records a response to a proxyless client in its status.
// Callers hold s.mu.
func (s *statusTracker) reportSent(streamID int64, typeURL string, version string) {
	id := s.proxyOf(streamID)
	t := s.reportNamed(id, typeURL)
	t.SentVersion, t.SentAt = version, time.Now()
}

// reportNamed copies into a proxyless client's status of typeURL what its
// streams subscribed to and were sent, and returns that status. Callers
// hold s.mu; the client is connected.
func (s *statusTracker) reportNamed(id, typeURL string) *TypeSync {
	var subs namedSubscriptions
	for k, n := range s.named[id] {
		if k.typeURL == typeURL {
			subs = append(subs, n)
		}
	}
	p := s.proxies[id]
	t := p.Types[typeURL]
	if t == nil {
		t = &TypeSync{}
		p.Types[typeURL] = t
	}
	subs.report(t)
	return t
}

func (s *statusTracker) streamClosed(streamID int64, _ *corev3.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[streamID]
	delete(s.streams, streamID)
	if st == nil || !st.registered {
		return
	}
	id := st.proxy
	var namedTypes []string
	for k := range s.named[id] {
		if k.stream == streamID {
			delete(s.named[id], k)
			namedTypes = append(namedTypes, k.typeURL)
		}
	}
	if len(s.named[id]) == 0 {
		delete(s.named, id)
	}
	s.metrics.connected.Dec()
	if p := s.proxies[id]; p != nil {
		p.Streams--
		if p.Proxyless {
			s.proxyless.remove(id)
		}
		if p.Streams <= 0 {
			delete(s.proxies, id)
			s.metrics.forget(id)
		} else {
			for _, typ := range namedTypes {
				s.reportNamed(id, typ)
			}
		}
	}
	s.logger.Info("proxy disconnected", "proxy", id, "stream", streamID)
}

// ackedVersions returns the version of typeURL each connected proxy last ACKed,
// by proxy ID ("" for none): what a root rotation polls, without copying
// every proxy's status under the lock its streams' ACKs wait on.
func (s *statusTracker) ackedVersions(typeURL string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.proxies))
	for id, p := range s.proxies {
		if t := p.Types[typeURL]; t != nil {
			out[id] = t.AckedVersion
		} else {
			out[id] = ""
		}
	}
	return out
}

// eachAcked calls fn with the version of typeURL each connected proxy last
// ACKed ("" for none), in no order, until fn returns false. fn runs under
// the tracker's lock: it must not call back into it, and should be quick.
func (s *statusTracker) eachAcked(typeURL string, fn func(id, acked string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.proxies {
		acked := ""
		if t := p.Types[typeURL]; t != nil {
			acked = t.AckedVersion
		}
		if !fn(id, acked) {
			return
		}
	}
}

// snapshot returns a deep copy of every connected proxy's status, by ID.
func (s *statusTracker) snapshot() []ProxyStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProxyStatus, 0, len(s.proxies))
	for _, p := range s.proxies {
		c := *p
		c.Types = make(map[string]*TypeSync, len(p.Types))
		for k, v := range p.Types {
			t := *v
			c.Types[k] = &t
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
