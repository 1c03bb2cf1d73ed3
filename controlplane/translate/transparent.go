package translate

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	origdstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/catalog"
)

// Names of the transparent-proxy resources, as Consul gives them to Envoy.
const (
	// OutboundListenerPrefix starts the name of a transparent proxy's
	// outbound listener: "outbound_listener:<address>:<port>".
	OutboundListenerPrefix = "outbound_listener"
	// OriginalDestinationCluster is the ORIGINAL_DST cluster that passes
	// traffic for destinations outside the mesh through to where it was
	// headed.
	OriginalDestinationCluster = "original-destination"

	originalDstFilter = "envoy.filters.listener.original_dst"
	// outboundListenerAddress is where the redirected traffic arrives;
	// Weft redirects IPv4 only.
	outboundListenerAddress = "127.0.0.1"
)

// OutboundListenerName is the name of a transparent proxy's outbound
// listener.
func OutboundListenerName(port int) string {
	return fmt.Sprintf("%s:%s:%d", OutboundListenerPrefix, outboundListenerAddress, port)
}

// transparent adds a transparent proxy's outbound listener: iptables sends
// the application's outbound TCP to it, the original_dst listener filter
// recovers where each connection was headed, and one filter chain per
// service the proxy's service may reach (by its intentions) matches that
// service's virtual IP. Connections to other addresses take the default
// chain, which passes them through to their original destination, unless
// the mesh config entry sets MeshDestinationsOnly: then there is no default
// chain and they are closed. This is the shape Consul gives Envoy.
func (t *translator) transparent(p *catalog.Proxy, outboundPort int, pr *proxyResources) {
	port := cmp.Or(outboundPort, catalog.DefaultOutboundListenerPort)
	name := OutboundListenerName(port)
	l := &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(outboundListenerAddress, port),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       originalDstFilter,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&origdstv3.OriginalDst{})},
		}},
	}
	for _, service := range t.reachable(p) {
		if fc := t.transparentChain(p, service, pr); fc != nil {
			l.FilterChains = append(l.FilterChains, fc)
		}
	}
	if !t.meshDestinationsOnly() {
		l.DefaultFilterChain = &listenerv3.FilterChain{
			Name:    OriginalDestinationCluster,
			Filters: []*listenerv3.Filter{tcpProxyFilterFor(OriginalDestinationCluster, OriginalDestinationCluster)},
		}
		pr.r.Clusters = append(pr.r.Clusters, originalDestinationCluster())
	}
	if len(l.FilterChains) == 0 && l.DefaultFilterChain == nil {
		return // as Consul: nothing would be served
	}
	pr.r.Listeners = append(pr.r.Listeners, l)
}

// transparentChain is the outbound filter chain of one reachable service,
// matching its virtual IPs; nil when Consul assigned it none.
func (t *translator) transparentChain(p *catalog.Proxy, service string, pr *proxyResources) *listenerv3.FilterChain {
	match := virtualIPMatch(t.endpoints(service))
	if match == nil {
		return nil
	}
	u := catalog.Upstream{DestinationName: service, LocalBindAddress: outboundListenerAddress}
	settings, problems := t.upstreamSettingsFor(p, u)
	for _, msg := range problems {
		t.problem("proxy %q: transparent upstream %q: %s", p.ID, service, msg)
	}
	ch := t.chainFor(service, t.snap.Datacenter, isHTTP(settings.protocol))
	for _, msg := range ch.problems {
		t.problem("proxy %q: transparent upstream %q: %s", p.ID, service, msg)
	}
	statPrefix := "upstream." + ClusterName(service, t.snap.Datacenter)
	var f *listenerv3.Filter
	if ch.routes != nil {
		f = httpFilter(hcmConfig{statPrefix: statPrefix, rdsName: ch.routes.Name, tracing: t.tracingFor(p.DestinationName)})
	} else {
		f = tcpProxyFilterFor(statPrefix, ch.targets[0].target.clusterName())
	}
	t.addChain(p, service, ch, settings, pr)
	return &listenerv3.FilterChain{Name: service, FilterChainMatch: match, Filters: []*listenerv3.Filter{f}}
}

// virtualIPMatch matches the virtual IPs of a service's instances (Consul
// assigns one per service; a re-registered service may briefly show two),
// any destination port, as Consul does: nil when there are none.
func virtualIPMatch(eps []catalog.Endpoint) *listenerv3.FilterChainMatch {
	ips := map[netip.Addr]bool{}
	for _, e := range eps {
		if ip, err := netip.ParseAddr(e.VirtualIP); err == nil {
			ips[ip.Unmap()] = true
		}
	}
	if len(ips) == 0 {
		return nil
	}
	m := &listenerv3.FilterChainMatch{}
	for _, ip := range slices.SortedFunc(maps.Keys(ips), netip.Addr.Compare) {
		m.PrefixRanges = append(m.PrefixRanges, &corev3.CidrRange{
			AddressPrefix: ip.String(),
			PrefixLen:     wrapperspb.UInt32(uint32(ip.BitLen())),
		})
	}
	return m
}

// reachable lists, sorted, the mesh services of the local datacenter other
// than its own that a proxy's service may call by its intentions.
func (t *translator) reachable(p *catalog.Proxy) []string {
	defaultAllow := t.defaultAllow()
	var out []string
	for _, service := range t.serviceNames() {
		if service != p.DestinationName && intentionAllows(t.intentionsFor(service), p.DestinationName, defaultAllow) {
			out = append(out, service)
		}
	}
	return out
}

// intentionAllows reports whether source may reach destination: the
// highest-precedence intention matching the source decides, an L7
// intention counting as allowing (its permissions are checked per
// request), and with none the default does. Consul decides a transparent
// proxy's upstreams this way.
func intentionAllows(ins []catalog.Intention, source string, defaultAllow bool) bool {
	for _, in := range ins {
		if in.Source != source && in.Source != catalog.Wildcard {
			continue
		}
		return len(in.Permissions) > 0 || in.Action == catalog.ActionAllow
	}
	return defaultAllow
}

// originalDestinationCluster connects to where a connection was headed
// before the redirect, as Consul's passthrough cluster does.
func originalDestinationCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 OriginalDestinationCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(defaultConnectTimeout),
	}
}
