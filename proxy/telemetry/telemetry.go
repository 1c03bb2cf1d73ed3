// Package telemetry puts weft-proxy's three signals on its traffic: a span
// (proxy/telemetry/tracing), the request and connection metrics
// (proxy/telemetry/metrics) and an access-log line
// (proxy/telemetry/accesslog), through one http.Handler middleware, one
// http.RoundTripper and two TCP hooks.
//
// # Wiring into proxy/listener
//
// Per proxy (proxy.New), passed to the listener manager in its Options:
//
//	tel := &telemetry.Telemetry{Metrics: m, AccessLog: al}
//	tracers := tracing.NewProviders(tracing.Options{
//		Resolve: otlpAddr, // cluster name → "host:port" of its first endpoint
//		Logger:  logger,
//	})
//
// and tracers.Close(ctx) after the listeners have drained.
//
// Per HTTP listener configuration, where the listener builds the immutable
// state it swaps in (so that a swap brings the new tracer): acquire the
// Tracer of the compiled HCM tracing config (config.HTTP.Tracing, from
// tracing.Compile) and wrap the listener's whole handler, outermost, so
// that the responses the sidecar generates itself (no_route, rbac_denied,
// invalid_path…) are seen too:
//
//	tr, err := tracers.Acquire(l.HTTP.Tracing) // nil config → nil Tracer; on error, log and go on with nil
//	handler := tel.Wrap(inner, telemetry.Listener{
//		Direction: metrics.Inbound,     // the xDS listener's traffic_direction
//		Service:   local, ServiceID: localID,
//		Peer:      upstream,            // outbound: the destination service
//		Route:     l.Name,
//		Tracer:    tr,
//	})
//
// The http.Server's Handler dispatches each request to the handler of the
// state it loads; the Tracer is released (tr.Release()) when that state is
// replaced or its listener removed.
//
// Per downstream connection, inbound (http.Server.ConnContext, after the
// mTLS handshake):
//
//	ctx = telemetry.WithPeer(ctx, telemetry.PeerFromSPIFFE(peerSPIFFEID))
//
// Per request, in the wrapped handler once the route matched:
//
//	telemetry.SetRoute(r.Context(), rt.Name, rt.Template)
//
// The forwarder's transport, so each upstream attempt reports its host and
// the upstream's own x-weft-error: wrap each attempt's RoundTripper,
// telemetry.Transport(rt) (router.Hooks.Attempt); and the router's
// events, which become span events: router.Hooks.Observe =
// telemetry.Observe. The retry loop counts retries with
// Metrics.Cluster(name).Retried(), and breakers report with
// Cluster.BreakerState and Cluster.Ejected.
//
// Per TCP listener configuration: hooks := tel.TCP(direction, destination,
// gateway); per connection, c := hooks.ConnOpened() once it passed RBAC
// and is about to be proxied, c = c.Connected(att.Cluster.TargetMetrics())
// once connected upstream (it counts on a gateway's listener), and
// c.Closed(in, out) when both copy directions are done, with the bytes
// read from the downstream connection and written to it.
//
// Every method is safe for concurrent use and never blocks on a collector,
// the access-log output or a scrape.
package telemetry

import (
	"strings"

	"github.com/weft-mesh/weft/proxy/tap"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// Telemetry is a sidecar's metrics and access log, shared by all its
// listeners. Either field may be nil, and so may the *Telemetry: what is
// missing is not recorded.
type Telemetry struct {
	Metrics   *metrics.Metrics
	AccessLog *accesslog.Logger
	// Tap receives the requests served while a live tap runs (optional).
	Tap *tap.Hub
	// LocalID returns the sidecar's own SPIFFE ID ("" before it has one).
	// Listeners whose Service is empty take their own service from it, so
	// requests are labelled correctly once the leaf certificate arrives.
	// Optional; it is called per request and must be cheap and lock-free.
	LocalID func() string
}

// self returns the sidecar's own service and SPIFFE ID: the listener's,
// else the local identity's, else "unknown".
func (t *Telemetry) self(l *Listener) (service, id string) {
	if l.Service != "" {
		return l.Service, l.ServiceID
	}
	if t != nil && t.LocalID != nil {
		if p := PeerFromSPIFFE(t.LocalID()); p.Service != "" {
			return p.Service, p.ID
		}
	}
	return unknownPeer, ""
}

// ConnectionRefused counts a connection a listener refused at its
// connection limit.
func (t *Telemetry) ConnectionRefused(address string) { t.metrics().ConnectionRefused(address) }

func (t *Telemetry) tap() *tap.Hub {
	if t == nil {
		return nil
	}
	return t.Tap
}

func (t *Telemetry) metrics() *metrics.Metrics {
	if t == nil {
		return nil
	}
	return t.Metrics
}

func (t *Telemetry) accessLog() *accesslog.Logger {
	if t == nil {
		return nil
	}
	return t.AccessLog
}

// Listener describes one HTTP listener configuration to its telemetry.
type Listener struct {
	// Direction is Inbound for the public listener, Outbound for an
	// upstream listener.
	Direction metrics.Direction
	// Service and ServiceID are the sidecar's own service and SPIFFE ID:
	// the destination inbound, the source outbound. Empty: from
	// Telemetry.LocalID, per request.
	Service   string
	ServiceID string
	// Peer and PeerID are the other side. Outbound: the upstream service
	// (the destination) and the SPIFFE ID it must present. Inbound: the
	// source of requests on connections without a Peer in their context
	// (default "unknown").
	Peer   string
	PeerID string
	// Protocol is the protocol label: "http", "http2" or "grpc". Empty
	// means each request's: grpc for gRPC, else http2 or http by version.
	Protocol string
	// Route is each request's route in the access log, unless SetRoute
	// names another.
	Route string
	// Tracer starts the listener's spans: server spans inbound, client
	// spans outbound. Nil traces nothing; trace headers still pass through.
	Tracer *tracing.Tracer
	// Gateway is the kind of gateway the listener serves ("ingress-gateway"
	// or "api-gateway" for HTTP); "" for a sidecar's. A gateway's requests
	// also count in the gateway metrics of the target of their last
	// attempt's cluster (Observe learns it).
	Gateway string
}

// unknownPeer is the source of inbound requests whose peer is not known.
const unknownPeer = "unknown"

// Peer is the verified identity of a downstream connection.
type Peer struct {
	Service string
	ID      string
}

// PeerFromSPIFFE returns the peer of a SPIFFE ID in Consul's form,
// spiffe://<trust-domain>/ns/<ns>/dc/<dc>/svc/<service>; the service is
// empty for other IDs.
func PeerFromSPIFFE(id string) Peer {
	p := Peer{ID: id}
	if i := strings.LastIndex(id, "/svc/"); i >= 0 {
		p.Service = id[i+len("/svc/"):]
	}
	return p
}
