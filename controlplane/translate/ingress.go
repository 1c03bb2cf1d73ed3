package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/catalog"
)

// An ingress gateway (a registration of kind ingress-gateway) gets, for
// each listener of the ingress-gateway entry of its service name, a
// listener on its address that accepts outside traffic and calls the mesh
// as its own identity (the gateway's service name), over the same
// discovery chains as a sidecar's upstreams: service-router, -splitter
// and -resolver apply. An HTTP listener routes by Host to each service's
// chain (Consul's default hosts are "<service>.ingress.*"); a TCP
// listener proxies to its one service. A listener with TLS (the entry's
// or its own TLS.Enabled) terminates it presenting IngressLeafSecret, a
// leaf of the mesh's CA that the gateway has signed with the DNS names
// its listeners' metadata lists (IngressDNSNamesField), and asks outside
// clients for no certificate; otherwise it takes plaintext.

// IngressRouteName names the route configuration of an ingress listener.
func IngressRouteName(port int) string { return "ingress:" + strconv.Itoa(port) }

func (t *translator) ingressGateway(p *catalog.Proxy) *Resources {
	pr := newProxyResources()
	entry := t.ingressEntry(p.Name)
	if entry == nil {
		t.problem("ingress gateway %q: no ingress-gateway config entry named %q: it has no listeners", p.ID, p.Name)
		return pr.r
	}
	if len(entry.Unsupported) > 0 {
		t.notApplied(p, fmt.Sprintf("ingress-gateway %q", entry.Name), entry.Unsupported)
	}
	gw := &catalog.Proxy{ID: p.ID, Name: p.Name, DestinationName: p.Name} // calls the mesh as p.Name
	ports := map[int]bool{}
	for i, l := range entry.Listeners {
		switch {
		case !validPort(l.Port):
			t.problem("ingress gateway %q: Listeners[%d]: port %d is not a TCP port; the listener is left out", p.ID, i, l.Port)
			continue
		case ports[l.Port]:
			t.problem("ingress gateway %q: Listeners[%d]: port %d is another listener's too; the listener is left out", p.ID, i, l.Port)
			continue
		}
		ports[l.Port] = true
		ts, err := ingressTLS(entry, l)
		if err != nil {
			t.problem("ingress gateway %q: Listeners[%d] (port %d): %v; the listener is left out", p.ID, i, l.Port, err)
			continue
		}
		before := len(pr.r.Listeners)
		t.ingressListener(p, gw, l, ts, pr)
		if ts != nil && len(pr.r.Listeners) > before {
			pr.r.Listeners[before].Metadata = ingressDNSNamesMetadata(catalog.IngressDNSNames(entry, t.snap.Datacenter, t.snap.DNSDomains))
		}
	}
	return t.finishGateway(pr)
}

// ingressTLS is the transport socket of an ingress listener with TLS
// (catalog.IngressGateway.ListenerTLS), nil without: TLS for clients
// outside the mesh presenting IngressLeafSecret, which the gateway holds
// (no sds_config), with no client certificate asked for, the entry's
// versions and cipher suites, and ALPN by protocol: h2 and http/1.1 for
// http, h2 for http2 and grpc, none for tcp.
func ingressTLS(entry *catalog.IngressGateway, l catalog.IngressListener) (*corev3.TransportSocket, error) {
	conf, ok := entry.ListenerTLS(l)
	if !ok {
		return nil, nil
	}
	fields := tlsFields{min: "TLS.TLSMinVersion", max: "TLS.TLSMaxVersion", suites: "TLS.CipherSuites"}
	params, err := tlsParameters(conf.MinVersion, conf.MaxVersion, conf.CipherSuites, fields)
	if err != nil {
		return nil, err
	}
	var alpn []string
	switch cmp.Or(l.Protocol, catalog.ProtocolTCP) {
	case catalog.ProtocolHTTP:
		alpn = httpALPN
	case catalog.ProtocolHTTP2, catalog.ProtocolGRPC:
		alpn = http2ALPN
	}
	ctx := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapBool(false),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      params,
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: IngressLeafSecret}},
			AlpnProtocols:                  alpn,
		},
	}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}, nil
}

// finishGateway completes the resources of a gateway that calls the mesh:
// the trust bundle when it has clusters, the span collector, sorted.
func (t *translator) finishGateway(pr *proxyResources) *Resources {
	if t.roots != nil && len(pr.r.Clusters) > 0 {
		pr.r.Secrets = append(pr.r.Secrets, t.roots)
	}
	if t.otlp != nil {
		pr.r.Clusters = append(pr.r.Clusters, t.otlp)
	}
	sortResources(pr.r)
	return pr.r
}

func (t *translator) ingressListener(p, gw *catalog.Proxy, l catalog.IngressListener, ts *corev3.TransportSocket, pr *proxyResources) {
	protocol := cmp.Or(l.Protocol, catalog.ProtocolTCP)
	name := "ingress:" + cmp.Or(p.Address, "0.0.0.0") + ":" + strconv.Itoa(l.Port)
	addr := socketAddress(cmp.Or(p.Address, "0.0.0.0"), l.Port)
	if !isHTTP(protocol) {
		if len(l.Services) != 1 {
			t.problem("ingress gateway %q: listener %d (tcp) needs exactly one service, has %d; it is left out", p.ID, l.Port, len(l.Services))
			return
		}
		svc := l.Services[0].Name
		u := catalog.Upstream{DestinationName: svc, Protocol: protocol}
		settings, _ := t.upstreamSettingsFor(gw, u)
		ch := t.chainFor(svc, t.snap.Datacenter, false)
		t.chainProblems(p, svc, ch)
		t.servicesNotInMesh(p, l.Port, svc, ch)
		pr.r.Listeners = append(pr.r.Listeners, listenerWith(name, addr, corev3.TrafficDirection_OUTBOUND, ts,
			tcpProxyFilterFor(name, ch.targets[0].target.clusterName())))
		t.addChain(p, svc, ch, settings, pr)
		return
	}
	rc := &routev3.RouteConfiguration{Name: IngressRouteName(l.Port)}
	claimed := map[string]string{} // host → service
	for _, s := range l.Services {
		if s.Name == catalog.Wildcard {
			t.problem("ingress gateway %q: listener %d: the wildcard service is not supported; it is left out", p.ID, l.Port)
			continue
		}
		u := catalog.Upstream{DestinationName: s.Name, Protocol: protocol}
		settings, _ := t.upstreamSettingsFor(gw, u)
		ch := t.chainFor(s.Name, t.snap.Datacenter, true)
		t.chainProblems(p, s.Name, ch)
		t.servicesNotInMesh(p, l.Port, s.Name, ch)
		hosts := s.Hosts
		if len(hosts) == 0 {
			hosts = []string{s.Name + ".ingress.*", s.Name + ".ingress.*:" + strconv.Itoa(l.Port)}
		}
		var mine []string
		for _, h := range hosts {
			if other, dup := claimed[h]; dup {
				t.problem("ingress gateway %q: listener %d: host %q is service %q's and %q's; %q keeps it", p.ID, l.Port, h, other, s.Name, other)
				continue
			}
			claimed[h] = s.Name
			mine = append(mine, h)
		}
		if len(mine) == 0 || ch.routes == nil {
			continue
		}
		vh := proto.Clone(ch.routes.VirtualHosts[0]).(*routev3.VirtualHost)
		vh.Name, vh.Domains = s.Name, mine
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
		t.addChainClusters(p, s.Name, ch, settings, pr)
	}
	slices.SortFunc(rc.VirtualHosts, func(a, b *routev3.VirtualHost) int { return cmp.Compare(a.Name, b.Name) })
	pr.addRoute(rc)
	f := httpFilter(hcmConfig{statPrefix: name, rdsName: rc.Name, tracing: t.tracingFor(p.Name)})
	pr.r.Listeners = append(pr.r.Listeners, listenerWith(name, addr, corev3.TrafficDirection_OUTBOUND, ts, f))
}

// chainProblems reports the problems of a chain a gateway routes to.
func (t *translator) chainProblems(p *catalog.Proxy, service string, ch *chainResources) {
	for _, msg := range ch.problems {
		t.problem("ingress gateway %q: service %q: %s", p.ID, service, msg)
	}
}

// servicesNotInMesh reports each service of this datacenter that the
// chain of an ingress listener's service routes to and that has no
// instance in the mesh (translator.inMesh): its name may be wrong, or its
// sidecar not registered. Consul accepts such an entry, so that a service
// can be registered later; the route is kept and reaches the service
// once it is, as Consul's own gateway does.
func (t *translator) servicesNotInMesh(p *catalog.Proxy, port int, service string, ch *chainResources) {
	reported := map[string]bool{}
	for _, r := range ch.targets {
		tg := r.target
		if tg.peer != "" || tg.dc != t.snap.Datacenter || reported[tg.service] || t.inMesh(tg.service) {
			continue
		}
		reported[tg.service] = true
		what := fmt.Sprintf("service %q", service)
		if tg.service != service {
			what += fmt.Sprintf(" routes to %q, which", tg.service)
		}
		t.problem("ingress gateway %q: listener %d: %s has no instance in the mesh (no sidecar or terminating gateway of it is registered in Consul: is the name right?); the route is kept and reaches it once one is registered",
			p.ID, port, what)
	}
}
