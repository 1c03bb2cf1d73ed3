package translate

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/catalog"
)

// Resources is the xDS configuration of one proxy. Every slice is sorted by
// resource name. Shared protos may appear in several proxies' Resources.
type Resources struct {
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Routes    []*routev3.RouteConfiguration
	Secrets   []*tlsv3.Secret
}

// Mesh is the mesh-wide security configuration translation needs beside
// the catalog.
type Mesh struct {
	// TrustDomain of every SPIFFE ID. Empty disables mTLS and RBAC, which
	// only tests of plain traffic do.
	TrustDomain string
	// RootsPEM is the trust bundle, the root signing leaves first.
	RootsPEM []byte
	// DefaultPolicy decides calls no intention matches: "allow" or "deny";
	// empty follows Consul's ACL default policy, and allows when unknown.
	DefaultPolicy string
}

// defaultAllow resolves the default intention policy as Consul does.
func (m Mesh) defaultAllow(snap *catalog.Snapshot) bool {
	policy := m.DefaultPolicy
	if policy == "" {
		policy = snap.ACLDefaultPolicy
	}
	return policy != catalog.ActionDeny
}

// Result is the outcome of translating one catalog snapshot.
type Result struct {
	// Proxies holds each sidecar's resources by its proxy ID.
	Proxies map[string]*Resources
	// Problems lists, per proxy ID, the parts of its registration that
	// could not be translated and were left out, each naming what is wrong.
	Problems map[string][]error
}

// Translate builds every proxy's resources from the catalog.
func Translate(snap *catalog.Snapshot, mesh Mesh) *Result {
	t := &translator{
		snap:     snap,
		mesh:     mesh,
		services: map[string]*serviceResources{},
		result: &Result{
			Proxies:  make(map[string]*Resources, len(snap.Proxies)),
			Problems: map[string][]error{},
		},
	}
	if mesh.TrustDomain != "" {
		t.roots = rootsSecret(mesh.RootsPEM)
	}
	for id, p := range snap.Proxies {
		t.result.Proxies[id] = t.proxy(p)
	}
	return t.result
}

// translator memoizes per-service resources within one Translate call.
type translator struct {
	snap     *catalog.Snapshot
	mesh     Mesh
	roots    *tlsv3.Secret                // shared by every proxy; nil without mTLS
	services map[string]*serviceResources // by cluster name + protocol
	result   *Result
}

// serviceResources are the resources a destination service contributes to
// every proxy with an upstream to it. Route is nil for L4 protocols.
type serviceResources struct {
	cluster   *clusterv3.Cluster
	endpoints *endpointv3.ClusterLoadAssignment
	route     *routev3.RouteConfiguration
}

func (t *translator) problem(proxyID string, format string, args ...any) {
	t.result.Problems[proxyID] = append(t.result.Problems[proxyID], fmt.Errorf(format, args...))
}

func (t *translator) proxy(p *catalog.Proxy) *Resources {
	r := &Resources{}
	if p.Port <= 0 || p.LocalPort <= 0 {
		t.problem(p.ID, "proxy %q: public listener needs port and local_service_port, got port=%d local_service_port=%d", p.ID, p.Port, p.LocalPort)
	} else {
		r.Listeners = append(r.Listeners, t.publicListener(p))
		r.Clusters = append(r.Clusters, staticCluster(LocalAppCluster, p.LocalAddress, p.LocalPort))
	}
	seen := map[string]bool{}
	for _, u := range p.Upstreams {
		t.upstream(p, u, r, seen)
	}
	if t.roots != nil {
		r.Secrets = []*tlsv3.Secret{t.roots}
	}
	sortResources(r)
	return r
}

func (t *translator) publicListener(p *catalog.Proxy) *listenerv3.Listener {
	addr := p.Address
	if addr == "" {
		addr = "0.0.0.0"
	}
	protocol := p.Protocol
	if protocol == "" {
		protocol = t.snap.ProtocolOf(p.DestinationName)
	}
	http := isHTTP(protocol)
	var filters []*listenerv3.Filter
	var httpFilters []*hcmv3.HttpFilter
	var ts *corev3.TransportSocket
	if t.mesh.TrustDomain != "" {
		ts = downstreamTLS(t.mesh, http)
		ins := intentionsFor(t.snap, p.DestinationName)
		if !http && hasL7(ins) {
			t.problem(p.ID, "service %q: L7 intentions need protocol http; its permissions are ignored and their sources denied", p.DestinationName)
			ins = l4Only(ins)
		}
		rules := rbacRules(ins, t.mesh.TrustDomain, t.mesh.defaultAllow(t.snap))
		if http && hasL7(ins) {
			// The whole decision is made per request, so a single L7 deny
			// can never fail open into an L4 allow.
			httpFilters = append(httpFilters, httpRBAC(rules))
		} else {
			filters = append(filters, networkRBAC(PublicListenerName, rules))
		}
	}
	if http {
		filters = append(filters, httpFilter(PublicListenerName, catchAllRoute(PublicListenerName, LocalAppCluster, LocalAppCluster), "", httpFilters...))
	} else {
		filters = append(filters, tcpProxyFilterFor(PublicListenerName, LocalAppCluster))
	}
	return listenerWith(PublicListenerName, socketAddress(addr, p.Port), corev3.TrafficDirection_INBOUND, ts, filters...)
}

// l4Only turns L7 intentions into L4 denies, failing closed.
func l4Only(ins []catalog.Intention) []catalog.Intention {
	out := make([]catalog.Intention, len(ins))
	for i, in := range ins {
		if len(in.Permissions) > 0 {
			in = catalog.Intention{Source: in.Source, Destination: in.Destination, Action: catalog.ActionDeny, Precedence: in.Precedence}
		}
		out[i] = in
	}
	return out
}

func (t *translator) upstream(p *catalog.Proxy, u catalog.Upstream, r *Resources, seen map[string]bool) {
	if u.DestinationName == "" || u.LocalBindPort <= 0 {
		t.problem(p.ID, "proxy %q: upstream %q: needs destination_name and local_bind_port, got local_bind_port=%d", p.ID, u.DestinationName, u.LocalBindPort)
		return
	}
	dc := u.Datacenter
	if dc == "" {
		dc = t.snap.Datacenter
	}
	protocol := u.Protocol
	if protocol == "" {
		protocol = t.snap.ProtocolOf(u.DestinationName)
	}
	svc := t.service(u.DestinationName, dc, protocol)
	name := UpstreamListenerName(u.DestinationName, u.LocalBindAddress, u.LocalBindPort)
	var f *listenerv3.Filter
	if svc.route != nil {
		f = httpFilter(name, nil, svc.route.Name)
	} else {
		f = tcpProxyFilterFor(name, svc.cluster.Name)
	}
	r.Listeners = append(r.Listeners, listenerWith(name, socketAddress(u.LocalBindAddress, u.LocalBindPort), corev3.TrafficDirection_OUTBOUND, nil, f))
	if seen[svc.cluster.Name] {
		return
	}
	seen[svc.cluster.Name] = true
	r.Clusters = append(r.Clusters, svc.cluster)
	r.Endpoints = append(r.Endpoints, svc.endpoints)
	if svc.route != nil {
		r.Routes = append(r.Routes, svc.route)
	}
}

// service returns the shared resources of a destination service, building
// them on first use.
func (t *translator) service(name, dc, protocol string) *serviceResources {
	cluster := ClusterName(name, dc)
	key := cluster + "|" + protocol
	if s, ok := t.services[key]; ok {
		return s
	}
	s := &serviceResources{cluster: edsCluster(cluster)}
	if t.mesh.TrustDomain != "" {
		s.cluster.TransportSocket = upstreamTLS(t.mesh, cluster, name, dc, isHTTP(protocol))
	}
	var eps []catalog.Endpoint
	if dc == t.snap.Datacenter {
		eps = t.snap.Endpoints[name]
	}
	s.endpoints = loadAssignment(cluster, eps)
	if isHTTP(protocol) {
		s.route = catchAllRoute(RouteName(name), name, cluster)
	}
	t.services[key] = s
	return s
}

// isHTTP reports whether a protocol is proxied at L7. HTTP/2 and gRPC are
// proxied at L4 until the sidecar speaks HTTP/2 between sidecars.
func isHTTP(protocol string) bool {
	return protocol == catalog.ProtocolHTTP
}

func sortResources(r *Resources) {
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].Name < r.Listeners[j].Name })
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].Name < r.Clusters[j].Name })
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].ClusterName < r.Endpoints[j].ClusterName })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].Name < r.Routes[j].Name })
	sort.Slice(r.Secrets, func(i, j int) bool { return r.Secrets[i].Name < r.Secrets[j].Name })
}
