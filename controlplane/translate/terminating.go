package translate

import (
	"cmp"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/weft-mesh/weft/catalog"
)

// TerminatingGatewayListenerName is a terminating gateway's one listener.
const TerminatingGatewayListenerName = "terminating_gateway"

// LinkedLeafSecret names the leaf certificate a terminating gateway
// presents for a linked service: the proxy obtains it from the
// certificate service as it obtains its own (LeafSecret), and its key
// never leaves the proxy.
func LinkedLeafSecret(service string) string { return LeafSecret + "/" + service }

// InternalSNI is the server name Consul's sidecars send to a service of
// this cluster, "<service>.<namespace>.<datacenter>.internal.<trust
// domain>". Weft's sidecars send the cluster name (ClusterName).
func InternalSNI(service, datacenter, trustDomain string) string {
	return ClusterName(service, datacenter) + ".internal." + trustDomain
}

// terminatingGateway translates a terminating gateway: a listener that
// reads each connection's SNI and, per service linked to the gateway,
// terminates the mesh's mTLS with that service's identity, enforces the
// service's intentions, and forwards to the service's instances (with
// TLS of its own when the link names a CA file).
func (t *translator) terminatingGateway(p *catalog.Proxy) *Resources {
	pr := newProxyResources()
	if !validPort(p.Port) {
		t.problem("terminating gateway %q: its registration needs a port, got %d", p.ID, p.Port)
		return pr.r
	}
	if t.mesh.TrustDomain == "" {
		t.problem("terminating gateway %q: the mesh has no trust domain, so no identities to present", p.ID)
		return pr.r
	}
	l := sniListener(TerminatingGatewayListenerName, p)
	dc := t.snap.Datacenter
	for _, s := range t.linkedServices(p.Name) {
		if (s.CertFile == "") != (s.KeyFile == "") || s.CertFile != "" && s.CAFile == "" {
			t.problem("terminating gateway %q: linked service %q: CertFile and KeyFile go together, with CAFile (got CAFile %q, CertFile %q, KeyFile %q); no client certificate is presented to it",
				p.ID, s.Name, s.CAFile, s.CertFile, s.KeyFile)
			s.CertFile, s.KeyFile = "", ""
		}
		if t.linkedUnregistered(s.Name) {
			t.problem("terminating gateway %q: linked service %q has no instance registered in Consul (is the name right?); the gateway answers for it and forwards once one is registered",
				p.ID, s.Name)
		}
		cluster := ClusterName(s.Name, dc)
		l.FilterChains = append(l.FilterChains, t.linkedChain(s.Name, cluster))
		c := edsCluster(cluster)
		c.Metadata = targetMetadata(s.Name, dc, "")
		if s.CAFile != "" {
			c.TransportSocket = originateTLS(s)
		}
		pr.addCluster(c, t.linkedLoadAssignment(cluster, s.Name), s.Name)
	}
	if len(l.FilterChains) == 0 {
		// Nothing is linked: the listener still binds and closes every
		// connection, as a mesh gateway with nothing exported does.
		l.DefaultFilterChain = &listenerv3.FilterChain{Name: "nothing_linked", Filters: []*listenerv3.Filter{tcpProxyFilterFor("nothing_linked", "nothing_linked")}}
		pr.addCluster(gatewayCluster("nothing_linked"), loadAssignment("nothing_linked"), "")
	}
	pr.r.Listeners = append(pr.r.Listeners, l)
	if t.roots != nil {
		pr.r.Secrets = append(pr.r.Secrets, t.roots)
	}
	sortResources(pr.r)
	return pr.r
}

// linkedChain is the filter chain of one linked service: matched by the
// server names Weft's and Consul's sidecars send, mTLS as the service,
// the service's intentions at L4, then TCP to its instances.
func (t *translator) linkedChain(service, cluster string) *listenerv3.FilterChain {
	ctx := downstreamTLSContext(t.mesh, false)
	ctx.CommonTlsContext.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{{Name: LinkedLeafSecret(service)}}
	ins := t.intentionsFor(service)
	if hasL7(ins) {
		t.problem("service %q: L7 intentions are not enforced by its terminating gateway (TCP); its permissions are ignored and their sources denied", service)
		ins = l4Only(ins)
	}
	rules := rbacRules(ins, t.mesh.trustDomains(), t.peerTrustDomain, t.defaultAllow())
	return &listenerv3.FilterChain{
		Name:             cluster,
		FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{cluster, InternalSNI(service, t.snap.Datacenter, t.mesh.TrustDomain)}},
		TransportSocket:  &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}},
		Filters:          []*listenerv3.Filter{networkRBAC(cluster, rules), tcpProxyFilterFor(cluster, cluster)},
	}
}

// linkedLoadAssignment is a linked service's instances: those its
// registration's checks pass, as Consul's gateway uses.
func (t *translator) linkedLoadAssignment(cluster, service string) *endpointv3.ClusterLoadAssignment {
	return loadAssignment(cluster, priorityGroup{endpoints: t.linkedInstances(service)})
}

// originateTLS is TLS from the gateway to a linked service that names a
// CA file (a path on the gateway's host): the service's certificate must
// chain to it and name the SNI (the service's name when none is set). With
// CertFile and KeyFile (paths on the gateway's host too, read by the
// gateway: the key travels over no network), the gateway presents that
// certificate.
func originateTLS(s catalog.LinkedService) *corev3.TransportSocket {
	sni := cmp.Or(s.SNI, s.Name)
	ctx := &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: s.CAFile}},
			MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: sni}}}},
		}},
	}}
	if s.CertFile != "" {
		ctx.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: s.CertFile}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: s.KeyFile}},
		}}
	}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}
