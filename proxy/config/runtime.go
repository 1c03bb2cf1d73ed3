// Package config compiles accepted xDS resources into weft-proxy's runtime
// configuration: plain, immutable Go structs that the data plane reads
// without ever touching a proto.
//
// Compile is the only place that interprets xDS. It rejects what the proxy
// does not understand (see docs/xds.md), with errors that name the resource
// and the field, so that the xDS client can NACK them.
package config

import (
	"crypto/tls"
	"time"

	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/rbac"
	"github.com/weft-mesh/weft/proxy/route"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
	"github.com/weft-mesh/weft/proxy/xds"
)

// Runtime is one compiled configuration. It and everything it points to
// are immutable; readers must not modify them.
type Runtime struct {
	// Listeners sorted by name.
	Listeners []*Listener
	// Clusters by name.
	Clusters map[string]*Cluster
	// Subscriptions are the RDS, EDS and SDS names this configuration uses.
	Subscriptions xds.Subscriptions
	// Secrets are the received trust bundles by SDS secret name.
	Secrets map[string]*mtls.Bundle
	// Certificates are the received certificates, with their private
	// keys, by SDS secret name (tls_certificate secrets): what listeners
	// present to clients outside the mesh (mtls.Server.Certificates).
	Certificates map[string]*tls.Certificate
	// UsesLeaf reports whether a listener or cluster presents the local
	// leaf certificate (weft-leaf).
	UsesLeaf bool
	// LinkedLeaves are the services whose leaf certificates a listener or
	// cluster presents (weft-leaf/<service>: a terminating gateway's linked
	// services), sorted, each once.
	LinkedLeaves []string
	// IngressLeaf, when not nil, is the leaf an ingress gateway's
	// listeners present to clients outside the mesh (IngressLeafSecret):
	// the proxy has it signed with these DNS names, and it is a
	// certificate of Certificates once it has it (WithCertificate).
	IngressLeaf *IngressLeaf

	// sources are the messages each resource was compiled from, for
	// Recompile; nil in a Runtime built by hand.
	sources *sources
}

// Mode says how a listener handles its connections.
type Mode uint8

const (
	// ModeTCP proxies bytes to one cluster (tcp_proxy).
	ModeTCP Mode = iota + 1
	// ModeHTTP terminates HTTP and routes requests (http_connection_manager).
	ModeHTTP
	// ModeTransparent picks a filter chain per connection by its original
	// destination (the original_dst listener filter); see Transparent.
	ModeTransparent
	// ModeOriginalDst proxies bytes to the connection's original
	// destination (tcp_proxy to an ORIGINAL_DST cluster): passthrough.
	ModeOriginalDst
	// ModeSNI picks a tcp_proxy chain per connection by the server name
	// of its TLS ClientHello, which passes TLS through or terminates it;
	// see SNIRouter.
	ModeSNI
)

func (m Mode) String() string {
	switch m {
	case ModeTCP:
		return "tcp"
	case ModeHTTP:
		return "http"
	case ModeTransparent:
		return "transparent"
	case ModeOriginalDst:
		return "original_dst"
	case ModeSNI:
		return "sni"
	}
	return "unknown"
}

// Listener is a compiled Listener resource.
type Listener struct {
	Name string
	// Address is the "ip:port" to bind.
	Address string
	Mode    Mode
	// Direction is the listener's traffic_direction: Inbound for the
	// public listener, Outbound for an upstream listener. Unspecified
	// counts as Inbound for a listener that terminates mesh mTLS, else
	// Outbound.
	Direction Direction
	// Cluster is the tcp_proxy target (ModeTCP).
	Cluster string
	// HTTP holds the http_connection_manager settings (ModeHTTP).
	HTTP *HTTP
	// TLS, when not nil, terminates TLS on accepted connections: mutual
	// TLS with the mesh's identities, or TLS for clients outside the mesh
	// with certificates received over SDS (TLS.Certificates).
	TLS *mtls.Server
	// RBAC are the network RBAC filters, in order; each must allow a
	// connection (after its handshake) for it to be served.
	RBAC []*rbac.Engine
	// Transparent holds the filter chains of a ModeTransparent listener.
	Transparent *Transparent
	// SNI holds the filter chains of a ModeSNI listener.
	SNI *SNIRouter
	// ConnectTimeout bounds connecting to the original destination
	// (ModeOriginalDst): the ORIGINAL_DST cluster's connect_timeout.
	ConnectTimeout time.Duration
	// Gateway is the kind of gateway whose traffic the listener carries
	// (its metadata); NotGateway for a sidecar's. Chains of a ModeSNI or
	// ModeTransparent listener leave it unset: the listener's applies.
	Gateway Gateway
	// IngressDNSNames are the DNS names an ingress gateway's listener
	// presenting IngressLeafSecret says that leaf carries (its metadata's
	// IngressDNSNamesField), sorted, each once; nil for other listeners.
	IngressDNSNames []string
}

// Direction says which way a listener's traffic flows.
type Direction uint8

const (
	// Outbound is traffic from the local app to an upstream service.
	Outbound Direction = iota
	// Inbound is traffic from other sidecars to the local app.
	Inbound
)

func (d Direction) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}

// HTTP is a compiled http_connection_manager.
type HTTP struct {
	// Tracing is the compiled tracing config; nil traces nothing (trace
	// headers still pass through).
	Tracing *tracing.Config
	// RouteConfigName is the RDS resource name; empty for inline routes.
	RouteConfigName string
	// Routes is the route table: inline, or the RDS resource when it has
	// arrived. Nil means requests fail with no_route until it arrives.
	Routes *route.Table
	// MaxRequestHeaderBytes bounds the size of the request's headers:
	// names and values, method, target and authority
	// (max_request_headers_kb; default 60 KiB; 0: no limit).
	MaxRequestHeaderBytes int
	// MaxRequestHeaders bounds the number of request header fields
	// (common_http_protocol_options.max_headers_count; default 100; 0: no
	// limit).
	MaxRequestHeaders int
	// RBAC are the HTTP RBAC filters before the router, in order; each
	// must allow a request for it to be routed.
	RBAC []*rbac.Engine
	// Codec says which protocols downstream clients may speak.
	Codec Codec
	// StreamIdleTimeout ends a stream silent in both directions for that
	// long (stream_idle_timeout, default 5 min; 0 disables it). A route's
	// idle_timeout overrides it.
	StreamIdleTimeout time.Duration
	// IdleTimeout closes downstream connections without streams
	// (common_http_protocol_options.idle_timeout); 0: the listener's default.
	IdleTimeout time.Duration
	// RequestHeadersTimeout bounds reading a request's headers; 0: the
	// listener's default.
	RequestHeadersTimeout time.Duration
	// HTTP2 are the downstream HTTP/2 settings.
	HTTP2 HTTP2Settings
}

// Codec is the downstream protocol of an HTTP listener (codec_type).
type Codec uint8

const (
	// CodecAuto serves HTTP/1.1 and HTTP/2 (h2c, or h2 by ALPN).
	CodecAuto Codec = iota
	// CodecHTTP1 serves HTTP/1.1 only.
	CodecHTTP1
	// CodecHTTP2 serves HTTP/2 only.
	CodecHTTP2
)

// HTTP2Settings are compiled Http2ProtocolOptions; zero fields keep Go's
// defaults.
type HTTP2Settings struct {
	// MaxConcurrentStreams per connection (default 100).
	MaxConcurrentStreams uint32
	// InitialStreamWindowSize and InitialConnectionWindowSize are the
	// receive windows.
	InitialStreamWindowSize, InitialConnectionWindowSize uint32
	// HpackTableSize is the header compression table size.
	HpackTableSize uint32
	// KeepaliveInterval and KeepaliveTimeout send PINGs on idle
	// connections and close those that do not answer.
	KeepaliveInterval, KeepaliveTimeout time.Duration
}

// Defaults of HTTP listener settings, as Envoy's (MaxConcurrentStreams:
// Weft's).
const (
	DefaultMaxRequestHeaderBytes = 60 << 10
	DefaultMaxRequestHeaders     = 100
	DefaultStreamIdleTimeout     = 5 * time.Minute
	DefaultMaxConcurrentStreams  = 100
)

// Cluster is a compiled Cluster with its endpoints.
type Cluster struct {
	Name           string
	ConnectTimeout time.Duration
	// Protocol is the upstream HTTP protocol.
	Protocol Protocol
	// IdleTimeout closes pooled upstream connections idle that long
	// (common_http_protocol_options.idle_timeout); 0: the default.
	IdleTimeout time.Duration
	// TLS, when not nil, makes connections to the endpoints mutual TLS.
	TLS *mtls.Client
	// EDSName is the load assignment name of an EDS cluster, else empty.
	EDSName string
	// Endpoints are all endpoints, healthy or not; nil while an EDS
	// cluster's load assignment has not arrived.
	Endpoints []Endpoint
	// LB is the load-balancing policy.
	LB LB
	// Limits are the DEFAULT-priority circuit breaker thresholds.
	Limits Limits
	// Outlier, when not nil, enables outlier detection.
	Outlier *outlier.Settings
	// OriginalDst marks an ORIGINAL_DST cluster: it has no endpoints, a
	// connection goes to where it was headed before the redirect. Only a
	// transparent listener's tcp_proxy may use it.
	OriginalDst bool
	// Aggregate, when not nil, makes this an aggregate cluster
	// (envoy.clusters.aggregate): the names of its child clusters, in
	// priority order. It has no endpoints, TLS or limits of its own: each
	// request goes to a child and takes that child's settings. Only
	// LB.PanicThreshold applies (when no child has an available host).
	Aggregate []string
	// Target is what the cluster leads to, from its metadata; zero when
	// the control plane did not say (and for aggregate and ORIGINAL_DST
	// clusters, which take no metadata).
	Target Target
}

// Protocol is a cluster's upstream HTTP protocol.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1 (the default).
	HTTP1 Protocol = iota
	// HTTP2 is HTTP/2: h2 over TLS, cleartext with prior knowledge (h2c)
	// without.
	HTTP2
	// Downstream speaks the protocol the request arrived in
	// (use_downstream_protocol_config).
	Downstream
	// Auto negotiates h2 or HTTP/1.1 with ALPN (auto_config; TLS only).
	Auto
)

// LBPolicy is a cluster's load-balancing policy.
type LBPolicy uint8

// The supported lb_policy values.
const (
	RoundRobin LBPolicy = iota
	LeastRequest
	Random
	RingHash
	Maglev
)

// LB is a compiled load-balancing policy and its settings.
type LB struct {
	Policy LBPolicy
	// ChoiceCount is least_request_lb_config.choice_count (0: default 2).
	ChoiceCount uint32
	// MinRingSize and MaxRingSize bound the ring (0: defaults).
	MinRingSize, MaxRingSize uint64
	// TableSize is the Maglev table size (0: default 65537).
	TableSize uint64
	// PanicThreshold is common_lb_config.healthy_panic_threshold, in
	// percent: below that share of available hosts the cluster balances
	// over all of them, healthy or not (see proxy/cluster). Compile sets
	// Envoy's default, 50, when the field is unset; 0 turns panic mode
	// off, as does a Cluster built by hand without it.
	PanicThreshold float64
}

// HashBased reports whether the policy picks by the request's hash.
func (lb LB) HashBased() bool { return lb.Policy == RingHash || lb.Policy == Maglev }

// Limits are circuit breaker thresholds, enforced with atomic counters.
type Limits struct {
	// MaxConnections to all of the cluster's hosts (default 1024).
	MaxConnections uint32
	// MaxPendingRequests waiting for a connection (default 1024).
	MaxPendingRequests uint32
	// MaxRequests in flight to the cluster (default 1024).
	MaxRequests uint32
	// MaxRetries in flight to the cluster (default 3), unless RetryBudget.
	MaxRetries uint32
	// RetryBudget, when not nil, replaces MaxRetries.
	RetryBudget *RetryBudget
}

// RetryBudget limits retries in flight to a share of active requests.
type RetryBudget struct {
	// Percent of active and pending requests (default 20).
	Percent float64
	// MinConcurrency is always allowed (default 3).
	MinConcurrency uint32
}

// DefaultLimits are Envoy's circuit breaker defaults.
func DefaultLimits() Limits {
	return Limits{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 3}
}

// Endpoint is one upstream host of a cluster.
type Endpoint struct {
	// Address is "host:port" ("ip:port" except for STRICT_DNS clusters).
	Address string
	// Healthy is true for health status HEALTHY or UNKNOWN: only those
	// endpoints receive traffic.
	Healthy bool
	// Weight is the load_balancing_weight, at least 1.
	Weight uint32
	// Priority is the locality priority; 0 is the highest.
	Priority uint32
	// InstanceID is the Consul service ID of the instance behind the
	// endpoint (its sidecar's), from the EDS metadata; "" when unknown.
	InstanceID string
}

// DefaultConnectTimeout applies to clusters without connect_timeout, as
// in Envoy.
const DefaultConnectTimeout = 5 * time.Second

// IngressLeaf is what an ingress gateway's leaf for outside clients
// (IngressLeafSecret) must carry besides the gateway's SPIFFE ID.
type IngressLeaf struct {
	// DNSNames are the union of the IngressDNSNames of the listeners
	// presenting it, sorted, each once; maybe empty.
	DNSNames []string
}

// WithCertificate returns a copy of rt whose Certificates hold cert under
// name besides rt's: a certificate the proxy holds rather than receives
// (IngressLeafSecret). rt is not modified.
func (rt *Runtime) WithCertificate(name string, cert *tls.Certificate) *Runtime {
	out := *rt
	out.Certificates = make(map[string]*tls.Certificate, len(rt.Certificates)+1)
	for n, c := range rt.Certificates {
		out.Certificates[n] = c
	}
	out.Certificates[name] = cert
	return &out
}
