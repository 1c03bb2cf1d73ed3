package translate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/catalog"
)

// Cluster peering, as Consul does it (catalog/peering.go). A sidecar
// calls a service a peer exports through the peer's mesh gateway, whose
// address Consul replicated as the instances': its TLS carries the SNI the
// peer's gateway routes by, trusts the peer's roots alone and expects the
// service's identity in the peer's trust domain. The peer's mesh gateway
// passes that TLS through to one of the service's sidecars, whose public
// listener trusts each peer it is exported to for that peer's trust domain
// only (Envoy's SPIFFE certificate validator). Trust therefore needs the
// peers' roots, which Consul exchanges through the peering: the mesh must
// use Consul's CA (--ca-provider consul).

const (
	tlsInspectorFilter = "envoy.filters.listener.tls_inspector"
	spiffeValidator    = "envoy.tls.cert_validator.spiffe"
	// MeshGatewayListenerName is a mesh gateway's one listener.
	MeshGatewayListenerName = "mesh_gateway"
)

// PeerClusterName names the cluster of a service imported from a peer.
func PeerClusterName(service, peer string) string {
	return service + "." + DefaultNamespace + ".default." + peer + ".peer"
}

// ExportedSNI is the server name a peer's sidecars send for a local
// service exported to it, which this cluster's mesh gateways route by:
// Consul's <service>.<namespace>.<partition>.<peer>.external.<trust domain>.
func ExportedSNI(service, peer, trustDomain string) string {
	return service + "." + DefaultNamespace + ".default." + peer + ".external." + trustDomain
}

// peerUpstream adds an upstream whose destination a peer exports.
func (t *translator) peerUpstream(p *catalog.Proxy, u catalog.Upstream, pr *proxyResources) {
	settings, problems := t.upstreamSettingsFor(p, u)
	for _, msg := range problems {
		t.problem("proxy %q: upstream %q: %s", p.ID, u.DestinationName, msg)
	}
	peer, imp := t.peer(u.Peer), t.imported(u.Peer, u.DestinationName)
	switch {
	case peer == nil:
		t.problem("proxy %q: upstream %q: peer %q: no ACTIVE peering of that name", p.ID, u.DestinationName, u.Peer)
	case imp == nil:
		t.problem("proxy %q: upstream %q: peer %q exports no service %q here (exported-services on the peer's side)", p.ID, u.DestinationName, u.Peer, u.DestinationName)
	}
	if imp != nil {
		settings.protocol = cmp.Or(u.Protocol, imp.Protocol, settings.protocol)
	}
	name := PeerClusterName(u.DestinationName, u.Peer)
	c := edsCluster(name)
	c.ConnectTimeout = durationpb.New(cmp.Or(settings.connectTimeout, defaultConnectTimeout))
	c.CircuitBreakers = circuitBreakers(settings.limits, isHTTP(settings.protocol))
	c.OutlierDetection = outlierDetection(settings.outlier)
	c.TypedExtensionProtocolOptions = httpProtocolOptions(settings.protocol)
	c.Metadata = targetMetadata(u.DestinationName, "", u.Peer)
	if peer == nil || imp == nil {
		pr.addCluster(c, loadAssignment(name), u.DestinationName) // no instances: calls fail as no_healthy_upstream
	} else if ts, err := t.peerUpstreamTLS(peer, imp, settings.protocol); err != nil {
		t.problem("proxy %q: upstream %q from peer %q: %v; its calls are refused", p.ID, u.DestinationName, u.Peer, err)
		pr.addCluster(c, loadAssignment(name), u.DestinationName)
	} else {
		c.TransportSocket = ts
		pr.addCluster(c, loadAssignment(name, priorityGroup{endpoints: t.peerEndpoints(p, u, imp)}), u.DestinationName)
	}
	lname := UpstreamListenerName(u.DestinationName, cmp.Or(u.LocalBindAddress, defaultLocalAddress), u.LocalBindPort)
	var f *listenerv3.Filter
	if isHTTP(settings.protocol) {
		f = httpFilter(hcmConfig{statPrefix: lname, routes: catchAllRoute(lname, u.DestinationName, name), tracing: t.tracingFor(p.DestinationName)})
	} else {
		f = tcpProxyFilterFor(lname, name)
	}
	addr := socketAddress(cmp.Or(u.LocalBindAddress, defaultLocalAddress), u.LocalBindPort)
	pr.r.Listeners = append(pr.r.Listeners, listenerWith(lname, addr, corev3.TrafficDirection_OUTBOUND, nil, f))
}

// peerEndpoints are where a sidecar dials a peer's service: the peer's
// mesh gateways (MeshGateway.Mode remote, none or unset), or this
// cluster's (local), which pass the same TLS on by its SNI.
func (t *translator) peerEndpoints(p *catalog.Proxy, u catalog.Upstream, imp *catalog.ImportedService) []catalog.Endpoint {
	switch mode := t.meshGatewayModeOf(p, u); mode {
	case catalog.MeshGatewayLocal:
		if gws := t.localMeshGateways(); len(gws) > 0 {
			return gws
		}
		t.problem("proxy %q: upstream %q from peer %q: MeshGateway.Mode is local, but no mesh gateway is registered in this cluster; it dials the peer's gateway directly", p.ID, u.DestinationName, u.Peer)
	case "", catalog.MeshGatewayRemote, catalog.MeshGatewayNone:
	default:
		t.problem("proxy %q: upstream %q from peer %q: MeshGateway.Mode %q is not local, remote or none; it dials the peer's gateway directly", p.ID, u.DestinationName, u.Peer, mode)
	}
	return imp.Endpoints
}

// peerUpstreamTLS is the TLS of calls to a peer's service: Consul's SNI
// for it, the peer's roots alone, and the service's SPIFFE ID in the
// peer's trust domain.
func (t *translator) peerUpstreamTLS(peer *catalog.Peer, imp *catalog.ImportedService, protocol string) (*corev3.TransportSocket, error) {
	if t.mesh.TrustDomain == "" {
		return nil, nil
	}
	switch {
	case len(peer.RootsPEM) == 0:
		return nil, fmt.Errorf("the peering carries no CA roots")
	case imp.SNI == "" || len(imp.SPIFFEIDs) == 0:
		return nil, fmt.Errorf("Consul replicated no SNI or identity for it")
	}
	var sans []*tlsv3.SubjectAltNameMatcher
	for _, id := range imp.SPIFFEIDs {
		if strings.Contains(id, "/svc/") { // not the peer's gateway: TLS passes through it
			sans = append(sans, &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}}})
		}
	}
	if len(sans) == 0 {
		return nil, fmt.Errorf("Consul replicated no service identity for it (only %q)", imp.SPIFFEIDs)
	}
	common := &tlsv3.CommonTlsContext{
		TlsParams:                      t.mesh.outgoingTLS(),
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: LeafSecret}},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa:                 inlinePEM(peer.RootsPEM),
			MatchTypedSubjectAltNames: sans,
		}},
		AlpnProtocols: upstreamALPN(protocol),
	}
	ctx := &tlsv3.UpstreamTlsContext{Sni: imp.SNI, CommonTlsContext: common}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}, nil
}

func inlinePEM(pems []string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: strings.Join(pems, "\n")}}
}

// peersCalling returns the peers a service is exported to whose trust
// domain is known, sorted by name: its public listener trusts them.
func (t *translator) peersCalling(service string) []*catalog.Peer {
	var out []*catalog.Peer
	for _, name := range t.exportedTo(service) {
		if p := t.peer(name); p != nil && p.TrustDomain != "" && len(p.RootsPEM) > 0 {
			out = append(out, p)
		} else if p != nil {
			t.problem("service %q: exported to peer %q, whose CA roots name no trust domain: its calls are refused", service, name)
		}
	}
	return out
}

// peeredDownstreamTLS is the public listener's TLS for a service exported
// to peers: a client certificate is required and verified with the roots
// of the trust domain it claims — the local one (and its aliases) with
// the mesh's roots, each peer's with that peer's — so that a peer's CA
// cannot vouch for a local identity.
func peeredDownstreamTLS(mesh Mesh, peers []*catalog.Peer, http bool) *corev3.TransportSocket {
	cfg := &tlsv3.SPIFFECertValidatorConfig{}
	var sans []*tlsv3.SubjectAltNameMatcher
	addDomain := func(td string, roots *corev3.DataSource) {
		cfg.TrustDomains = append(cfg.TrustDomains, &tlsv3.SPIFFECertValidatorConfig_TrustDomain{Name: td, TrustBundle: roots})
		sans = append(sans, &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://" + td + "/"}}})
	}
	local := &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: mesh.RootsPEM}}
	for _, td := range mesh.trustDomains() {
		addDomain(td, local)
	}
	for _, p := range peers {
		if !slices.Contains(mesh.trustDomains(), p.TrustDomain) {
			addDomain(p.TrustDomain, inlinePEM(p.RootsPEM))
		}
	}
	ctx := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapBool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      mesh.incomingTLS(),
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: LeafSecret}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CustomValidatorConfig:     &corev3.TypedExtensionConfig{Name: spiffeValidator, TypedConfig: mustAny(cfg)},
				MatchTypedSubjectAltNames: sans,
			}},
			AlpnProtocols: alpnFor(http),
		},
	}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

// meshGateway translates a mesh gateway: one listener that routes by SNI,
// passing TLS through, to the sidecars of each local service exported to
// a peer. It holds no certificate: no leaf, no roots.
func (t *translator) meshGateway(p *catalog.Proxy) *Resources {
	pr := newProxyResources()
	if !validPort(p.Port) {
		t.problem("mesh gateway %q: its registration needs a port, got %d", p.ID, p.Port)
		return pr.r
	}
	if t.mesh.TrustDomain == "" {
		t.problem("mesh gateway %q: the mesh has no trust domain, so no SNI to route by", p.ID)
		return pr.r
	}
	l := sniListener(MeshGatewayListenerName, p)
	exported := map[string]target{} // cluster (the SNI) → the service and the peer it is exported to
	for _, svc := range t.exportedServices() {
		for _, peer := range t.exportedTo(svc) {
			exported[ExportedSNI(svc, peer, t.mesh.TrustDomain)] = target{service: svc, dc: t.snap.Datacenter, peer: peer}
		}
	}
	addChain := func(sni string, to target, eps []catalog.Endpoint) {
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{Name: sni,
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{sni}},
			Filters:          []*listenerv3.Filter{tcpProxyFilterFor(sni, sni)}})
		c := gatewayCluster(sni)
		c.Metadata = targetMetadata(to.service, to.dc, to.peer)
		pr.addCluster(c, loadAssignment(sni, priorityGroup{endpoints: eps}), to.service)
	}
	for _, sni := range slices.Sorted(maps.Keys(exported)) {
		addChain(sni, exported[sni], t.endpoints(exported[sni].service))
	}
	// Outbound, for sidecars in MeshGateway.Mode local: each imported
	// service's SNI to the peer's gateways, TLS still passed through.
	for _, imp := range t.importedServices() {
		if _, taken := exported[imp.SNI]; imp.SNI != "" && !taken {
			addChain(imp.SNI, target{service: imp.Service, peer: imp.Peer}, imp.Endpoints)
		}
	}
	if len(l.FilterChains) == 0 {
		// Nothing is exported: the listener still binds (Consul's
		// gateway does too) and closes every connection.
		l.DefaultFilterChain = &listenerv3.FilterChain{Name: "nothing_exported", Filters: []*listenerv3.Filter{tcpProxyFilterFor("nothing_exported", "nothing_exported")}}
		pr.addCluster(gatewayCluster("nothing_exported"), loadAssignment("nothing_exported"), "")
	}
	pr.r.Listeners = append(pr.r.Listeners, l)
	sortResources(pr.r)
	return pr.r
}

// sniListener is a gateway's one listener, on its registered address and
// port: its chains are picked by the TLS ClientHello's server name.
func sniListener(name string, p *catalog.Proxy) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(cmp.Or(p.Address, "0.0.0.0"), p.Port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		ListenerFilters: []*listenerv3.ListenerFilter{{Name: tlsInspectorFilter,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})}}},
	}
}

// gatewayCluster is a mesh gateway's cluster: plain TCP to the sidecars,
// whose TLS the gateway passes through.
func gatewayCluster(name string) *clusterv3.Cluster { return edsCluster(name) }
