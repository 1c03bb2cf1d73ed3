// Package catalog holds Weft's immutable model of the mesh: the services,
// sidecar proxies, healthy endpoints and config entries that discovery reads
// from Consul and the control plane translates into xDS.
//
// A *Snapshot and everything it points to is immutable once published:
// producers build a new Snapshot for every change, consumers may share and
// read it from any goroutine but must never mutate it.
package catalog

import "cmp"

// Protocols understood by the mesh, as named by Consul's service-defaults
// "Protocol" field.
const (
	ProtocolTCP   = "tcp"
	ProtocolHTTP  = "http"
	ProtocolHTTP2 = "http2"
	ProtocolGRPC  = "grpc"
)

// IsL7 reports whether a protocol is proxied per request (HTTP, HTTP/2,
// gRPC) rather than per connection (tcp).
func IsL7(protocol string) bool {
	switch protocol {
	case ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC:
		return true
	}
	return false
}

// Snapshot is one consistent view of the mesh.
type Snapshot struct {
	// Version increases by one with every snapshot a source publishes.
	// It orders snapshots from one source; it is not an xDS version.
	Version uint64

	// Datacenter is the Consul datacenter the snapshot describes.
	Datacenter string
	// DNSDomains are the DNS domain and alt domain of the Consul agent
	// the snapshot was read from, lower case, without the trailing dot;
	// empty when unknown (the default, "consul", applies).
	DNSDomains []string

	// Proxies are the sidecar (connect-proxy) registrations by their
	// Consul service ID, which is also the sidecar's xDS node ID.
	Proxies map[string]*Proxy

	// Endpoints are, per destination service name, the sidecar instances
	// fronting that service, sorted by ID. Every registered sidecar is
	// listed with its health; consumers choose which to use.
	Endpoints map[string][]Endpoint

	// ServiceDefaults are the service-defaults config entries by service name.
	ServiceDefaults map[string]*ServiceDefaults

	// ProxyDefaults is the global proxy-defaults config entry, or nil.
	ProxyDefaults *ProxyDefaults

	// ServiceResolvers, ServiceSplitters and ServiceRouters are the
	// discovery-chain config entries by service name.
	ServiceResolvers map[string]*ServiceResolver
	ServiceSplitters map[string]*ServiceSplitter
	ServiceRouters   map[string]*ServiceRouter

	// Intentions are the sources of every service-intentions config entry,
	// by destination name ("*" for the wildcard entry), each list sorted by
	// descending precedence.
	Intentions map[string][]Intention

	// ACLDefaultPolicy is Consul's acl.default_policy ("allow" or "deny"),
	// or "" when unknown. With ACLs disabled Consul allows by default.
	ACLDefaultPolicy string

	// Mesh is the mesh config entry, or nil when there is none.
	Mesh *Mesh

	// IntentionsNotApplied are, by destination name, what a
	// service-intentions entry sets that Weft leaves out (sources outside
	// this mesh's trust domain); only entries with some are listed.
	IntentionsNotApplied map[string]*EntryNote

	// ExportedServices notes what the exported-services entry sets that
	// Weft does not apply (exports to partitions or sameness groups); nil
	// when nothing.
	ExportedServices *EntryNote

	// Peers are the ACTIVE peerings by name (peering.go).
	Peers map[string]*Peer
	// Imported are the services peers export to this cluster, by
	// ImportedKey(peer, service).
	Imported map[string]*ImportedService
	// Exports are, by local service name, the peers the exported-services
	// entry exports it to, sorted.
	Exports map[string][]string

	// IngressGateways are the ingress-gateway entries, by gateway service
	// name (ingress.go).
	IngressGateways map[string]*IngressGateway

	// APIGateways are the api-gateway entries, each joined with its
	// routes and certificates, by gateway service name (apigateway.go).
	APIGateways map[string]*APIGateway

	// MeshGateways are this cluster's mesh gateways, as the endpoints
	// sidecars dial in MeshGateway.Mode local (peering.go), sorted.
	MeshGateways []Endpoint

	// TerminatingGateways are the services linked to each terminating
	// gateway, by gateway service name (terminating.go).
	TerminatingGateways map[string]*TerminatingGateway
	// LinkedInstances are the passing instances of every service linked
	// to a terminating gateway, by service name: what the gateway
	// forwards to. (Endpoints holds the gateways themselves for such a
	// service: what sidecars dial.)
	LinkedInstances map[string][]Endpoint
}

// Proxy is one sidecar registration (Consul kind "connect-proxy"), or a
// gateway's (Kind set; it has no destination, application or upstreams).
type Proxy struct {
	ID   string // Consul service ID, e.g. "web-1-sidecar-proxy"
	Name string // Consul service name, e.g. "web-sidecar-proxy"
	Node string // Consul node the sidecar is registered on
	// Kind is empty for a sidecar, else the gateway's Consul kind
	// (KindMeshGateway, KindIngressGateway, KindTerminatingGateway,
	// KindAPIGateway).
	Kind string

	// Address and Port are where the sidecar's public listener accepts
	// mesh traffic (the registration's address, else the node's).
	Address string
	Port    int

	// DestinationName and DestinationID name the service instance the
	// sidecar fronts.
	DestinationName string
	DestinationID   string

	// LocalAddress and LocalPort are where the local application listens.
	LocalAddress string
	LocalPort    int

	// Protocol is the "protocol" key of the registration's proxy config,
	// an override of the service's protocol; empty when unset.
	Protocol string

	Upstreams []Upstream

	// Mode is the registration's proxy mode: ModeTransparent, or empty
	// for Consul's default (direct: explicit upstreams only).
	Mode string
	// OutboundListenerPort is transparent_proxy.outbound_listener_port;
	// 0 means Consul's default, 15001.
	OutboundListenerPort int
}

// Proxy modes, as Consul names them.
const (
	ModeDirect      = "direct"
	ModeTransparent = "transparent"
)

// DefaultOutboundListenerPort is where transparent proxies receive
// redirected outbound traffic unless their registration says otherwise.
const DefaultOutboundListenerPort = 15001

// Mesh is the part of Consul's mesh config entry Weft applies.
type Mesh struct {
	// MeshDestinationsOnly (transparent_proxy.mesh_destinations_only)
	// stops transparent proxies passing traffic for destinations outside
	// the mesh through to where it was headed: it is dropped instead.
	MeshDestinationsOnly bool
	// TLSIncoming and TLSOutgoing (TLS.Incoming, TLS.Outgoing) bound the
	// mesh's mTLS: Incoming on sidecars' and terminating gateways' public
	// listeners, Outgoing on the upstream calls of sidecars and ingress
	// gateways, as in Consul; nil when unset.
	TLSIncoming, TLSOutgoing *TLSParams

	// Unsupported lists the settings Weft does not apply, as in
	// ServiceDefaults; they concern every proxy. ModifyIndex is as in
	// ServiceDefaults.
	Unsupported []string
	ModifyIndex uint64
}

// TLSParams are TLS versions and TLS 1.2 cipher suites as Consul's
// entries spell them ("TLSv1_2", "TLS_AUTO"; IANA or Envoy suite names).
type TLSParams struct {
	MinVersion, MaxVersion string
	CipherSuites           []string
}

// Upstream is one upstream of a sidecar: a local listener that forwards to
// a destination service.
type Upstream struct {
	DestinationName string
	Datacenter      string // empty means the local datacenter
	// Peer is the peering the destination is imported from
	// (DestinationPeer); empty for a local (or Datacenter) destination.
	Peer string
	// MeshGatewayMode is the registration's MeshGateway.Mode for it.
	MeshGatewayMode  string
	LocalBindAddress string // defaults to 127.0.0.1
	LocalBindPort    int

	// Protocol is the "protocol" key of the upstream's config, an override
	// of the destination service's protocol; empty when unset.
	Protocol string

	// Config holds the other keys of the upstream's config map that Weft
	// applies (connect_timeout_ms, limits, passive_health_check); nil when
	// none is set. They take precedence over the service-defaults
	// upstream_config of the sidecar's service.
	Config *UpstreamConfig
	// ConfigProblems name the keys of the config map that could not be
	// read, e.g. `limits.max_connections: expected a number, got "ten"`.
	// Those keys are ignored.
	ConfigProblems []string
}

// Health is the aggregated state of an endpoint's checks.
type Health int

const (
	HealthPassing Health = iota
	HealthWarning
	HealthCritical
)

// String returns Consul's name of the health state.
func (h Health) String() string {
	switch h {
	case HealthPassing:
		return "passing"
	case HealthWarning:
		return "warning"
	default:
		return "critical"
	}
}

// Endpoint is one sidecar instance that can receive mesh traffic for a
// destination service.
type Endpoint struct {
	ProxyID string // the sidecar's service ID
	Node    string
	Address string // the sidecar's public listener address
	Port    int
	Health  Health

	// Weights are the sidecar registration's Consul weights (Consul's
	// own xDS uses them too); 1/1 when unset.
	WeightPassing int
	WeightWarning int

	// Tags and Meta are the sidecar registration's, which Consul copies
	// from the service a sidecar_service belongs to unless the stanza sets
	// its own. service-resolver subset filters match on them.
	Tags []string
	Meta map[string]string

	// VirtualIP is the virtual IP Consul assigned to the destination
	// service (the registration's "consul-virtual" tagged address); empty
	// when Consul has not assigned one. Transparent proxies route by it.
	VirtualIP string
}

// ServiceDefaults is the part of a service-defaults config entry Weft uses.
type ServiceDefaults struct {
	Name     string
	Protocol string

	// Mode and TransparentProxy are the entry's proxy mode settings for
	// the service's sidecars (see Snapshot.ProxyModeOf).
	Mode             string
	TransparentProxy TransparentProxy
	// MeshGatewayMode is MeshGateway.Mode for the service's sidecars'
	// peered upstreams (see Snapshot.MeshGatewayModeOf).
	MeshGatewayMode string

	// UpstreamConfig configures the upstreams of the service's sidecars;
	// nil when unset.
	UpstreamConfig *UpstreamConfiguration

	// Unsupported lists the settings Weft cannot apply, each naming the
	// field, e.g. `UpstreamConfig.Overrides[0].Peer = "other"`; those
	// settings (here: that override) are left out.
	Unsupported []string
	// ModifyIndex is Consul's version of the entry when Unsupported is
	// not empty (the version its notes are logged for), else 0, so that
	// rewriting an entry Weft applies in full changes no snapshot.
	ModifyIndex uint64
}

// ProxyDefaults is the part of the global proxy-defaults entry Weft uses.
type ProxyDefaults struct {
	Protocol string // the "protocol" key of its Config

	// Mode and TransparentProxy are the mesh-wide proxy mode settings
	// (see Snapshot.ProxyModeOf).
	Mode             string
	TransparentProxy TransparentProxy
	// MeshGatewayMode is the mesh-wide MeshGateway.Mode.
	MeshGatewayMode string

	// Unsupported lists the settings Weft cannot apply, and ModifyIndex
	// is the entry's version, as in ServiceDefaults.
	Unsupported []string
	ModifyIndex uint64
}

// TransparentProxy is the transparent_proxy block of a registration,
// service-defaults or proxy-defaults: zero values are unset.
type TransparentProxy struct {
	OutboundListenerPort int
}

// ProxyModeOf resolves a sidecar's proxy mode and transparent outbound
// port as Consul does: each setting from the registration when it sets it
// (a mode other than the default ""), else from the service-defaults of
// the service it fronts, else from proxy-defaults. A Consul agent merges
// the same way before it syncs a registration to the catalog; resolving
// again here covers proxies registered in the catalog directly, and
// config entries that change after a registration was made.
func (s *Snapshot) ProxyModeOf(p *Proxy) (mode string, outboundPort int) {
	mode, outboundPort = p.Mode, p.OutboundListenerPort
	if sd := s.ServiceDefaults[p.DestinationName]; sd != nil {
		mode = cmp.Or(mode, sd.Mode)
		outboundPort = cmp.Or(outboundPort, sd.TransparentProxy.OutboundListenerPort)
	}
	if pd := s.ProxyDefaults; pd != nil {
		mode = cmp.Or(mode, pd.Mode)
		outboundPort = cmp.Or(outboundPort, pd.TransparentProxy.OutboundListenerPort)
	}
	return mode, outboundPort
}

// ProtocolOf returns the protocol of a service: its service-defaults
// protocol, else proxy-defaults' protocol, else tcp, as Consul resolves it.
func (s *Snapshot) ProtocolOf(service string) string {
	if d := s.ServiceDefaults[service]; d != nil && d.Protocol != "" {
		return d.Protocol
	}
	if s.ProxyDefaults != nil && s.ProxyDefaults.Protocol != "" {
		return s.ProxyDefaults.Protocol
	}
	return ProtocolTCP
}
