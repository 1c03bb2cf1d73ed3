package translate

import (
	"fmt"
)

// Well-known resource and extension names.
const (
	PublicListenerName = "public_listener"
	LocalAppCluster    = "local_app"

	tcpProxyFilter = "envoy.filters.network.tcp_proxy"
	hcmFilter      = "envoy.filters.network.http_connection_manager"
	routerFilter   = "envoy.filters.http.router"
)

// DefaultNamespace is Consul's namespace for services outside Enterprise.
const DefaultNamespace = "default"

// ClusterName is the name of the cluster of a destination service, in the
// form Consul uses for its upstream clusters without the trust-domain suffix:
// "<service>.<namespace>.<datacenter>".
func ClusterName(service, datacenter string) string {
	return service + "." + DefaultNamespace + "." + datacenter
}

// SubsetClusterName is the name of the cluster of a service-resolver
// subset of a service, "<subset>.<service>.<namespace>.<datacenter>", as
// Consul names it.
func SubsetClusterName(subset, service, datacenter string) string {
	if subset == "" {
		return ClusterName(service, datacenter)
	}
	return subset + "." + ClusterName(service, datacenter)
}

// UpstreamListenerName is the name of the outbound listener of an upstream,
// "<service>:<bind address>:<bind port>", as Consul names it for Envoy.
func UpstreamListenerName(service, addr string, port int) string {
	return fmt.Sprintf("%s:%s:%d", service, addr, port)
}

// RouteName is the name of the route configuration of a destination service.
func RouteName(service string) string { return service }

// routeNameIn is the name of the route configuration of a destination
// service in a datacenter: RouteName in the local datacenter, else
// "<service>?dc=<datacenter>" as Consul names upstreams.
func routeNameIn(service, datacenter, localDatacenter string) string {
	if datacenter == localDatacenter {
		return RouteName(service)
	}
	return service + "?dc=" + datacenter
}
