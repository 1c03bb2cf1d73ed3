package translate

import (
	"bytes"
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/certs"
)

// ProxylessCertProvider is the certificate-provider instance name proxyless
// gRPC clients' bootstraps define (weft grpc-bootstrap writes it).
const ProxylessCertProvider = "weft"

const proxylessPrefix = "proxyless/"

// Proxyless builds the resources every proxyless gRPC client gets: for
// each service with instances, an API listener named after the service (so
// a client dials xds:///<service>) with its routes inline, a cluster and a
// load assignment. Clients reach the services' sidecars directly, over
// mTLS with certificates from their bootstrap's certificate provider when
// the mesh has a trust domain. gRPC's default policy balances across
// localities by weight, so each instance is its own locality weighted by
// its Consul weight; unhealthy instances are left out.
func Proxyless(snap *catalog.Snapshot, mesh Mesh) *Resources {
	r := &Resources{}
	for _, svc := range slices.Sorted(maps.Keys(snap.Endpoints)) {
		proxylessOf(svc, snap.Endpoints[svc], snap.Datacenter, mesh).addTo(r)
	}
	return r
}

// proxylessService holds the proxyless resources of one service and the
// instances they were built from.
type proxylessService struct {
	endpoints []catalog.Endpoint
	listener  *listenerv3.Listener
	cluster   *clusterv3.Cluster
	cla       *endpointv3.ClusterLoadAssignment
}

func proxylessOf(svc string, eps []catalog.Endpoint, dc string, mesh Mesh) proxylessService {
	cluster := proxylessPrefix + ClusterName(svc, dc)
	c := edsCluster(cluster)
	if mesh.TrustDomain != "" {
		c.TransportSocket = proxylessTLS(spiffeURI(mesh.TrustDomain, certs.ServiceIdentity{Namespace: DefaultNamespace, Datacenter: dc, Service: svc}))
	}
	return proxylessService{
		endpoints: eps,
		listener:  apiListener(svc, catchAllRoute(proxylessPrefix+svc, svc, cluster)),
		cluster:   c,
		cla:       localityPerEndpoint(cluster, eps),
	}
}

func (s proxylessService) addTo(r *Resources) {
	r.Listeners = append(r.Listeners, s.listener)
	r.Clusters = append(r.Clusters, s.cluster)
	r.Endpoints = append(r.Endpoints, s.cla)
}

// proxylessCache is what Translator.Proxyless built last.
type proxylessCache struct {
	dc       string
	mesh     Mesh
	services map[string]proxylessService
	res      *Resources
}

// Proxyless returns what the function Proxyless returns, building again
// only the resources of services whose instances changed since the last
// call, and the very same *Resources when none did.
func (x *Translator) Proxyless(snap *catalog.Snapshot, mesh Mesh) *Resources {
	c := &x.proxyless
	if c.services == nil || c.dc != snap.Datacenter || !sameMeshButRoots(c.mesh, mesh) || !bytes.Equal(c.mesh.RootsPEM, mesh.RootsPEM) {
		*c = proxylessCache{dc: snap.Datacenter, mesh: cloneMesh(mesh), services: map[string]proxylessService{}}
	}
	changed := c.res == nil
	for svc, eps := range snap.Endpoints {
		if s, ok := c.services[svc]; !ok || !catalog.SameEndpoints(s.endpoints, eps) {
			c.services[svc] = proxylessOf(svc, eps, snap.Datacenter, mesh)
			changed = true
		}
	}
	for svc := range c.services {
		if _, ok := snap.Endpoints[svc]; !ok {
			delete(c.services, svc)
			changed = true
		}
	}
	if changed {
		c.res = &Resources{}
		for _, svc := range slices.Sorted(maps.Keys(c.services)) {
			c.services[svc].addTo(c.res)
		}
	}
	return c.res
}

// apiListener carries its routes inline: go-control-plane's consistency
// check does not follow RDS names out of API listeners.
func apiListener(name string, routes *routev3.RouteConfiguration) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routes},
		HttpFilters:    []*hcmv3.HttpFilter{typedHTTPFilter(routerFilter, &routerv3.Router{})},
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)}}
}

func localityPerEndpoint(cluster string, eps []catalog.Endpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	for _, e := range eps {
		health, weight := endpointHealth(e, false)
		if health != corev3.HealthStatus_HEALTHY {
			continue
		}
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{SubZone: e.ProxyID},
			LbEndpoints:         []*endpointv3.LbEndpoint{lbEndpoint(e.Address, e.Port, health, 1)},
			LoadBalancingWeight: wrapperspb.UInt32(uint32(weight)),
		})
	}
	return cla
}

// proxylessTLS is mTLS as gRPC's xDS client supports it: certificates and
// roots from a certificate-provider instance, the server's SPIFFE ID
// checked against the control plane's expectation.
func proxylessTLS(spiffeID string) *corev3.TransportSocket {
	provider := &tlsv3.CertificateProviderPluginInstance{InstanceName: ProxylessCertProvider, CertificateName: "default"}
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: provider,
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			CaCertificateProviderInstance: provider,
			MatchSubjectAltNames:          []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: spiffeID}}},
		}},
		AlpnProtocols: []string{"h2"},
	}}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}
