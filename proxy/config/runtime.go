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
	// Subscriptions are the RDS and EDS names this configuration uses.
	Subscriptions xds.Subscriptions
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
	// TLS, when not nil, terminates TLS on accepted connections. It is
	// reserved for the transport-socket compile step (mTLS); Compile
	// rejects transport sockets today, so it is always nil.
	TLS *tls.Config
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
	// HTTP2 makes HTTP requests use cleartext HTTP/2 (prior knowledge)
	// upstream instead of HTTP/1.1.
	HTTP2 bool
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
