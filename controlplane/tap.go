package controlplane

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
	"github.com/weft-mesh/weft/catalog"
)

// tapHub is the control plane's side of live tap (api/tap/v1): it holds
// every sidecar's tap stream and the taps operators run (tap_http.go),
// starts each tap on the sidecars it concerns, including sidecars that
// connect while it runs, and routes their events to it.
type tapHub struct {
	tapv1.UnimplementedTapServiceServer
	authz   Authorizer // nil: no ACL check
	catalog func() *catalog.Snapshot
	log     *slog.Logger

	mu       sync.Mutex
	sidecars map[*sidecarTap]bool
	taps     map[string]*tapSession
}

// sidecarTap is one sidecar's tap stream. Commands are rare (a tap
// starting or stopping), so no goroutine waits to send them: the first
// command queued starts one, which ends once the queue is empty. An idle
// stream costs the control plane only the goroutine receiving on it.
type sidecarTap struct {
	proxyID, service string
	send             func(*tapv1.TapCommand) error
	log              *slog.Logger

	mu      sync.Mutex
	pending []*tapv1.TapCommand
	sending bool
}

// maxPendingCommands bounds the commands queued for one sidecar.
const maxPendingCommands = 64

// enqueue queues a command for the stream, in order; it never blocks.
func (sc *sidecarTap) enqueue(c *tapv1.TapCommand) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.pending) >= maxPendingCommands {
		return false
	}
	sc.pending = append(sc.pending, c)
	if !sc.sending {
		sc.sending = true
		go sc.drain()
	}
	return true
}

func (sc *sidecarTap) drain() {
	for {
		sc.mu.Lock()
		if len(sc.pending) == 0 {
			sc.sending = false
			sc.mu.Unlock()
			return
		}
		c := sc.pending[0]
		sc.pending = sc.pending[1:]
		sc.mu.Unlock()
		if err := sc.send(c); err != nil {
			// The stream is broken: its Recv fails too, and ends it.
			sc.log.Debug("tap command not sent", "proxy", sc.proxyID, "error", err)
		}
	}
}

// tapSession is one running tap: what it asks of sidecars and where their
// events go.
type tapSession struct {
	id       string
	req      TapRequest
	events   chan *tapv1.TapEvent
	dropped  atomic.Uint64 // at sidecars (rate, queue) and here (events full)
	sidecars map[*sidecarTap]bool
}

// TapRequest is what an operator taps: requests to To and from From (either
// may be empty), on paths under PathPrefix, whose status matches Status.
type TapRequest struct {
	To, From, PathPrefix, Status string
	MaxPerSecond                 uint32
}

// tapEventsBuffered bounds the events a tap holds for its operator.
const tapEventsBuffered = 1024

func newTapHub(authz Authorizer, snap func() *catalog.Snapshot, log *slog.Logger) *tapHub {
	return &tapHub{authz: authz, catalog: snap, log: log, sidecars: map[*sidecarTap]bool{}, taps: map[string]*tapSession{}}
}

// Stream serves one sidecar's tap stream.
func (h *tapHub) Stream(s tapv1.TapService_StreamServer) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	sc, err := h.identify(s.Context(), first.GetProxyId())
	if err != nil {
		return err
	}
	sc.send, sc.log = s.Send, h.log
	h.attach(sc)
	defer h.detach(sc)
	for {
		msg, err := s.Recv()
		if err != nil {
			return err
		}
		h.deliver(sc, msg)
	}
}

// identify checks that the stream's token may act for the proxy, as the
// certificate service does, and names the proxy's service.
func (h *tapHub) identify(ctx context.Context, proxyID string) (*sidecarTap, error) {
	snap := h.catalog()
	if snap == nil {
		return nil, status.Error(codes.Unavailable, "control plane has no catalog from Consul yet")
	}
	p := snap.Proxies[proxyID]
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "proxy %q is not registered in Consul", proxyID)
	}
	service := cmp.Or(p.DestinationName, p.Name)
	if h.authz != nil {
		ok, err := h.authz.CanWriteService(ctx, tokenFrom(ctx), service)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "check ACL token with Consul: %v", err)
		}
		if !ok {
			return nil, status.Errorf(codes.PermissionDenied, "token may not service:write %q, which a tap stream for proxy %q requires", service, proxyID)
		}
	}
	return &sidecarTap{proxyID: proxyID, service: service}, nil
}

func (h *tapHub) attach(sc *sidecarTap) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sidecars[sc] = true
	for _, t := range h.taps {
		h.startOn(t, sc)
	}
}

func (h *tapHub) detach(sc *sidecarTap) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sidecars, sc)
	for _, t := range h.taps {
		delete(t.sidecars, sc)
	}
}

// deliver routes a sidecar's events to their taps; a tap whose operator
// reads too slowly loses events, counted.
func (h *tapHub) deliver(sc *sidecarTap, msg *tapv1.SidecarMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range msg.GetDropped() {
		if t := h.taps[id]; t != nil {
			t.dropped.Add(n)
		}
	}
	for _, e := range msg.GetEvents() {
		t := h.taps[e.GetTapId()]
		if t == nil || !t.sidecars[sc] {
			continue // a tap that ended, or one this sidecar was not asked to run
		}
		e.ProxyId = sc.proxyID
		select {
		case t.events <- e:
		default:
			t.dropped.Add(1)
		}
	}
}

// startOn starts t on sc if t concerns it. h.mu is held.
func (h *tapHub) startOn(t *tapSession, sc *sidecarTap) {
	f, ok := t.req.filterFor(sc.service)
	if !ok {
		return
	}
	if sc.enqueue(&tapv1.TapCommand{TapId: t.id, Filter: f, MaxPerSecond: t.req.MaxPerSecond}) {
		t.sidecars[sc] = true
	} else {
		h.log.Warn("tap not started on a sidecar: its command queue is full", "proxy", sc.proxyID, "tap", t.id)
	}
}

// filterFor is the filter a sidecar of service applies for r, and whether
// r concerns it at all: with From, only From's sidecars, on their
// outbound requests; with To alone, every sidecar's outbound requests to
// To (so requests that never reach To, refused or failed on the way, are
// seen); with neither, every sidecar's inbound requests (each request
// once).
func (r TapRequest) filterFor(service string) (*tapv1.TapFilter, bool) {
	f := &tapv1.TapFilter{PathPrefix: r.PathPrefix, Status: r.Status, Destination: r.To}
	switch {
	case r.From != "":
		f.Direction, f.Source = "outbound", r.From
		return f, service == r.From
	case r.To != "":
		f.Direction = "outbound"
		return f, true
	}
	f.Direction = "inbound"
	return f, true
}

// ErrTapForbidden is a tap the token may not run.
var ErrTapForbidden = errors.New("tap forbidden")

// Start runs a tap for an operator whose ACL token is token. A tap shows
// request paths and caller identities, so the token must be allowed
// service:write on every service the tap can reveal: To and From, or, when
// neither is named, every service in the catalog (with ACLs disabled any
// token passes). The returned session's events channel receives the
// events; stop ends the tap on every sidecar.
func (h *tapHub) Start(ctx context.Context, token string, req TapRequest) (s *tapSession, stop func(), err error) {
	if err := h.authorize(ctx, token, req); err != nil {
		return nil, nil, err
	}
	id := make([]byte, 8)
	rand.Read(id)
	t := &tapSession{id: hex.EncodeToString(id), req: req, events: make(chan *tapv1.TapEvent, tapEventsBuffered), sidecars: map[*sidecarTap]bool{}}
	h.mu.Lock()
	h.taps[t.id] = t
	for sc := range h.sidecars {
		h.startOn(t, sc)
	}
	h.mu.Unlock()
	return t, func() { h.stop(t) }, nil
}

func (h *tapHub) stop(t *tapSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.taps, t.id)
	for sc := range t.sidecars {
		if !sc.enqueue(&tapv1.TapCommand{TapId: t.id, Stop: true}) {
			h.log.Warn("tap stop not sent: the sidecar's command queue is full; it stops when its stream ends", "proxy", sc.proxyID, "tap", t.id)
		}
	}
}

func (h *tapHub) authorize(ctx context.Context, token string, req TapRequest) error {
	if h.authz == nil {
		return nil
	}
	services := []string{req.To, req.From}
	if req.To == "" && req.From == "" {
		services = nil
		if snap := h.catalog(); snap != nil {
			seen := map[string]bool{}
			for _, p := range snap.Proxies {
				seen[cmp.Or(p.DestinationName, p.Name)] = true
			}
			for s := range seen {
				services = append(services, s)
			}
			sort.Strings(services)
		}
	}
	for _, s := range slices.Compact(services) {
		if s == "" {
			continue
		}
		ok, err := h.authz.CanWriteService(ctx, token, s)
		if err != nil {
			return fmt.Errorf("check ACL token with Consul: %w", err)
		}
		if !ok {
			return fmt.Errorf("%w: token may not service:write %q, which tapping its requests requires", ErrTapForbidden, s)
		}
	}
	return nil
}

// register exposes how many sidecars hold a tap stream and how many taps
// run.
func (h *tapHub) register(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	count := func(f func() int) func() float64 {
		return func() float64 {
			h.mu.Lock()
			defer h.mu.Unlock()
			return float64(f())
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_cp_tap_streams", Help: "Sidecars holding a tap stream open to this control plane."},
			count(func() int { return len(h.sidecars) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_cp_taps_running", Help: "Live taps running (weft tap, /tap)."},
			count(func() int { return len(h.taps) })),
	)
}

// sidecarCount is how many sidecars hold a tap stream, and how many run t.
func (h *tapHub) sidecarCount(t *tapSession) (connected, tapped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sidecars), len(t.sidecars)
}
