package translate

import (
	"cmp"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/weft-mesh/weft/catalog"
)

// Resources that proxies building the same one share within a
// translation: one proto instead of a copy per sidecar.

// outboundKey is everything an upstream's listener is built from.
type outboundKey struct {
	name, addr string
	port       int
	// routes names the chain's routes (HTTP), cluster its one target's
	// cluster (TCP); tracedAs is the service HTTP spans are named for,
	// empty without tracing.
	routes, cluster, tracedAs string
}

// sharedOutbound is the listener of upstream u of proxy p, whose chain is
// ch: the one built for an earlier proxy with the same upstream, when
// there is one. Every instance of a service, and every proxy with the
// same upstream when nothing is traced, holds one listener proto instead
// of a copy each (the publisher would find them equal and send one).
func (t *translator) sharedOutbound(p *catalog.Proxy, u catalog.Upstream, ch *chainResources) *listenerv3.Listener {
	k := outboundKey{name: UpstreamListenerName(u.DestinationName, u.LocalBindAddress, u.LocalBindPort), addr: u.LocalBindAddress, port: u.LocalBindPort}
	if ch.routes != nil {
		k.routes = ch.routes.Name
		if t.mesh.Tracing != nil {
			k.tracedAs = p.DestinationName
		}
	} else {
		k.cluster = ch.targets[0].target.clusterName()
	}
	if l, ok := t.outbound[k]; ok {
		return l
	}
	var f *listenerv3.Filter
	if k.routes != "" {
		f = httpFilter(hcmConfig{statPrefix: k.name, rdsName: k.routes, tracing: t.tracingFor(p.DestinationName)})
	} else {
		f = tcpProxyFilterFor(k.name, k.cluster)
	}
	l := listenerWith(k.name, socketAddress(k.addr, k.port), corev3.TrafficDirection_OUTBOUND, nil, f)
	t.outbound[k] = l
	return l
}

// localAppKey is everything a local app cluster is built from.
type localAppKey struct {
	addr     string
	port     int
	protocol string
}

// sharedLocalApp is localAppCluster(p, protocol), shared like
// sharedOutbound's listeners by proxies whose applications listen on the
// same address and port and speak the same protocol.
func (t *translator) sharedLocalApp(p *catalog.Proxy, protocol string) *clusterv3.Cluster {
	k := localAppKey{addr: cmp.Or(p.LocalAddress, defaultLocalAddress), port: p.LocalPort, protocol: protocol}
	if c, ok := t.localApps[k]; ok {
		return c
	}
	c := localAppCluster(p, protocol)
	t.localApps[k] = c
	return c
}

// sharedDownstreamTLS is downstreamTLS(t.mesh, http), built once per
// translation: every public listener without peers presents the same.
func (t *translator) sharedDownstreamTLS(http bool) *corev3.TransportSocket {
	i := 0
	if http {
		i = 1
	}
	if t.downstreamTLS[i] == nil {
		t.downstreamTLS[i] = downstreamTLS(t.mesh, http)
	}
	return t.downstreamTLS[i]
}

// publicKey is what a public listener's filters are built from.
type publicKey struct {
	service string
	http    bool
}

// publicResult is the filters of the public listeners of a service's
// instances, and the inputs and problems building them recorded, which
// a reuse replays.
type publicResult struct {
	filters  []*listenerv3.Filter
	inputs   []input
	problems []error
}

// publicFilters are the filters of the public listener of an instance of
// service: its intentions (RBAC, when mTLS is on) and the connection
// manager or TCP proxy to the application. Every instance of the
// service has the same, built once per translation; a mesh-wide
// intention change rebuilds them once per service, not per sidecar.
func (t *translator) publicFilters(service string, http bool) []*listenerv3.Filter {
	k := publicKey{service: service, http: http}
	if r, ok := t.publics[k]; ok {
		t.replay(r.inputs)
		t.problems = append(t.problems, r.problems...)
		return r.filters
	}
	mark, problems := len(t.inputs), len(t.problems)
	var filters []*listenerv3.Filter
	var httpFilters []*hcmv3.HttpFilter
	if t.mesh.TrustDomain != "" {
		ins := t.intentionsFor(service)
		if !http && hasL7(ins) {
			t.problem("service %q: L7 intentions need protocol http; its permissions are ignored and their sources denied", service)
			ins = l4Only(ins)
		}
		rules := rbacRules(ins, t.mesh.trustDomains(), t.peerTrustDomain, t.defaultAllow())
		if http {
			// As in Consul, every intention of an HTTP service is enforced
			// per request: a denied caller gets a 403 that says why
			// (rbac_denied) rather than a reset connection, and a single
			// L7 deny can never fail open into an L4 allow.
			httpFilters = append(httpFilters, httpRBAC(rules))
		} else {
			filters = append(filters, networkRBAC(PublicListenerName, rules))
		}
	}
	if http {
		filters = append(filters, httpFilter(hcmConfig{statPrefix: PublicListenerName,
			routes:  catchAllRoute(PublicListenerName, LocalAppCluster, LocalAppCluster),
			filters: httpFilters, tracing: t.tracingFor(service)}))
	} else {
		filters = append(filters, tcpProxyFilterFor(PublicListenerName, LocalAppCluster))
	}
	t.publics[k] = publicResult{filters: filters, inputs: t.inputsSince(mark), problems: slices.Clone(t.problems[problems:])}
	return filters
}
