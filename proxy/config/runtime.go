// Package config compiles accepted xDS resources into weft-proxy's runtime
// configuration: plain, immutable Go structs that the data plane reads
// without ever touching a proto.
//
// Compile is the only place that interprets xDS. It rejects what the proxy
// does not understand (see docs/xds.md), with errors that name the resource
// and the field, so that the xDS client can NACK them.
package config

import (
	"time"

	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/rbac"
	"github.com/weft-mesh/weft/proxy/route"
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
	// UsesLeaf reports whether a listener or cluster presents the local
	// leaf certificate (weft-leaf).
	UsesLeaf bool
}

// Mode says how a listener handles its connections.
type Mode uint8

const (
	// ModeTCP proxies bytes to one cluster (tcp_proxy).
	ModeTCP Mode = iota + 1
	// ModeHTTP terminates HTTP and routes requests (http_connection_manager).
	ModeHTTP
)

func (m Mode) String() string {
	switch m {
	case ModeTCP:
		return "tcp"
	case ModeHTTP:
		return "http"
	}
	return "unknown"
}

// Listener is a compiled Listener resource.
type Listener struct {
	Name string
	// Address is the "ip:port" to bind.
	Address string
	Mode    Mode
	// Cluster is the tcp_proxy target (ModeTCP).
	Cluster string
	// HTTP holds the http_connection_manager settings (ModeHTTP).
	HTTP *HTTP
	// TLS, when not nil, terminates (mutual) TLS on accepted connections.
	TLS *mtls.Server
	// RBAC are the network RBAC filters, in order; each must allow a
	// connection (after its handshake) for it to be served.
	RBAC []*rbac.Engine
}

// HTTP is a compiled http_connection_manager.
type HTTP struct {
	// RouteConfigName is the RDS resource name; empty for inline routes.
	RouteConfigName string
	// Routes is the route table: inline, or the RDS resource when it has
	// arrived. Nil means requests fail with no_route until it arrives.
	Routes *route.Table
	// MaxRequestHeaderBytes bounds the request line and headers
	// (max_request_headers_kb; default 60 KiB).
	MaxRequestHeaderBytes int
	// MaxRequestHeaders bounds the number of request header fields
	// (common_http_protocol_options.max_headers_count; default 100).
	MaxRequestHeaders int
	// RBAC are the HTTP RBAC filters before the router, in order; each
	// must allow a request for it to be routed.
	RBAC []*rbac.Engine
}

// Defaults of HTTP limits, as Envoy's.
const (
	DefaultMaxRequestHeaderBytes = 60 << 10
	DefaultMaxRequestHeaders     = 100
)

// Cluster is a compiled Cluster with its endpoints.
type Cluster struct {
	Name           string
	ConnectTimeout time.Duration
	// HTTP2 makes HTTP requests use HTTP/2 upstream instead of HTTP/1.1:
	// cleartext with prior knowledge, or over TLS when ALPN agrees.
	HTTP2 bool
	// TLS, when not nil, makes connections to the endpoints mutual TLS.
	TLS *mtls.Client
	// EDSName is the load assignment name of an EDS cluster, else empty.
	EDSName string
	// Endpoints are all endpoints, healthy or not; nil while an EDS
	// cluster's load assignment has not arrived.
	Endpoints []Endpoint
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
}

// DefaultConnectTimeout applies to clusters without connect_timeout, as
// in Envoy.
const DefaultConnectTimeout = 5 * time.Second
