package translate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

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
	// Tracing, when set, has every HTTP listener trace requests and export
	// spans over OTLP/gRPC to the collector.
	Tracing *Tracing
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

// validPort reports whether port is a TCP port a listener or cluster can use.
func validPort(port int) bool { return port > 0 && port <= 65535 }

// Translate builds every proxy's resources from the catalog.
func Translate(snap *catalog.Snapshot, mesh Mesh) *Result {
	result := &Result{
		Proxies:  make(map[string]*Resources, len(snap.Proxies)),
		Problems: map[string][]error{},
	}
	snap = withoutUnusableEndpoints(snap, result.Problems)
	t := &translator{
		snap:        snap,
		mesh:        mesh,
		chains:      map[chainKey]*chainResources{},
		resolutions: map[resolveKey]resolveResult{},
		filters:     map[string]filterResult{},
		clusters:    map[clusterKey]clusterResult{},
		loads:       map[*resolution]*endpointv3.ClusterLoadAssignment{},
		plain:       map[target]*resolution{},
		result:      result,
	}
	if mesh.TrustDomain != "" {
		t.roots = rootsSecret(mesh.RootsPEM)
	}
	if mesh.Tracing != nil {
		t.otlp = otlpCluster(*mesh.Tracing)
	}
	for _, id := range slices.Sorted(maps.Keys(snap.Proxies)) {
		t.result.Proxies[id] = t.proxy(snap.Proxies[id])
	}
	return t.result
}

// withoutUnusableEndpoints returns snap, or a copy of it without the
// instances that have no address or no valid port, which no proxy could
// dial. Each one left out is reported once, under its own proxy ID. The
// snapshot itself is never modified.
func withoutUnusableEndpoints(snap *catalog.Snapshot, problems map[string][]error) *catalog.Snapshot {
	var cleaned map[string][]catalog.Endpoint
	for _, svc := range slices.Sorted(maps.Keys(snap.Endpoints)) {
		all := snap.Endpoints[svc]
		usable := slices.DeleteFunc(slices.Clone(all), func(e catalog.Endpoint) bool {
			if e.Address != "" && validPort(e.Port) {
				return false
			}
			problems[e.ProxyID] = append(problems[e.ProxyID], fmt.Errorf(
				"instance %q of service %q: address %q port %d cannot be dialed; left out of load assignments", e.ProxyID, svc, e.Address, e.Port))
			return true
		})
		if len(usable) == len(all) {
			continue
		}
		if cleaned == nil {
			cleaned = maps.Clone(snap.Endpoints)
		}
		cleaned[svc] = usable
	}
	if cleaned == nil {
		return snap
	}
	cp := *snap
	cp.Endpoints = cleaned
	return &cp
}

// translator memoizes, within one Translate call, everything that does not
// depend on the proxy: compiled chains with their route configurations,
// resolved targets with their load assignments, subset filters, and
// clusters (by resolved target and upstream settings). Proxies share these
// protos by pointer.
type translator struct {
	snap  *catalog.Snapshot
	mesh  Mesh
	roots *tlsv3.Secret      // shared by every proxy; nil without mTLS
	otlp  *clusterv3.Cluster // the span collector; nil without tracing

	chains      map[chainKey]*chainResources
	resolutions map[resolveKey]resolveResult
	filters     map[string]filterResult
	clusters    map[clusterKey]clusterResult
	loads       map[*resolution]*endpointv3.ClusterLoadAssignment
	plain       map[target]*resolution

	result *Result
}

func (t *translator) problem(proxyID string, format string, args ...any) {
	t.result.Problems[proxyID] = append(t.result.Problems[proxyID], fmt.Errorf(format, args...))
}

func (t *translator) proxy(p *catalog.Proxy) *Resources {
	pr := newProxyResources()
	if sd := t.snap.ServiceDefaults[p.DestinationName]; sd != nil && len(sd.Unsupported) > 0 {
		t.problem(p.ID, "proxy %q: service-defaults %q: not supported and left out: %s", p.ID, sd.Name, strings.Join(sd.Unsupported, ", "))
	}
	protocol := cmp.Or(p.Protocol, t.snap.ProtocolOf(p.DestinationName))
	if !validPort(p.Port) || !validPort(p.LocalPort) {
		t.problem(p.ID, "proxy %q: public listener needs port and local_service_port, got port=%d local_service_port=%d", p.ID, p.Port, p.LocalPort)
	} else {
		pr.r.Listeners = append(pr.r.Listeners, t.publicListener(p, protocol))
		pr.r.Clusters = append(pr.r.Clusters, localAppCluster(p, protocol))
	}
	for _, u := range p.Upstreams {
		t.upstream(p, u, pr)
	}
	if p.Mode == catalog.ModeTransparent {
		t.transparent(p, pr)
	}
	if t.roots != nil {
		pr.r.Secrets = []*tlsv3.Secret{t.roots}
	}
	if t.otlp != nil {
		pr.r.Clusters = append(pr.r.Clusters, t.otlp)
	}
	sortResources(pr.r)
	return pr.r
}

func (t *translator) publicListener(p *catalog.Proxy, protocol string) *listenerv3.Listener {
	addr := p.Address
	if addr == "" {
		addr = "0.0.0.0"
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
		filters = append(filters, httpFilter(hcmConfig{statPrefix: PublicListenerName,
			routes:  catchAllRoute(PublicListenerName, LocalAppCluster, LocalAppCluster),
			filters: httpFilters, tracing: t.tracingFor(p.DestinationName)}))
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

// upstream adds an upstream's listener and its chain's clusters, load
// assignments and routes.
func (t *translator) upstream(p *catalog.Proxy, u catalog.Upstream, pr *proxyResources) {
	if u.DestinationName == "" || !validPort(u.LocalBindPort) {
		t.problem(p.ID, "proxy %q: upstream %q: needs destination_name and local_bind_port, got local_bind_port=%d", p.ID, u.DestinationName, u.LocalBindPort)
		return
	}
	for _, msg := range u.ConfigProblems {
		t.problem(p.ID, "proxy %q: upstream %q: config: %s; ignored", p.ID, u.DestinationName, msg)
	}
	settings, problems := t.upstreamSettingsFor(p, u)
	for _, msg := range problems {
		t.problem(p.ID, "proxy %q: upstream %q: %s", p.ID, u.DestinationName, msg)
	}
	ch := t.chainFor(u.DestinationName, cmp.Or(u.Datacenter, t.snap.Datacenter), isHTTP(settings.protocol))
	for _, msg := range ch.problems {
		t.problem(p.ID, "proxy %q: upstream %q: %s", p.ID, u.DestinationName, msg)
	}
	u.LocalBindAddress = cmp.Or(u.LocalBindAddress, defaultLocalAddress)
	name := UpstreamListenerName(u.DestinationName, u.LocalBindAddress, u.LocalBindPort)
	var f *listenerv3.Filter
	if ch.routes != nil {
		f = httpFilter(hcmConfig{statPrefix: name, rdsName: ch.routes.Name, tracing: t.tracingFor(p.DestinationName)})
	} else {
		f = tcpProxyFilterFor(name, ch.targets[0].target.clusterName())
	}
	pr.r.Listeners = append(pr.r.Listeners, listenerWith(name, socketAddress(u.LocalBindAddress, u.LocalBindPort), corev3.TrafficDirection_OUTBOUND, nil, f))
	t.addChain(p, u.DestinationName, ch, settings, pr)
}

// addChain adds the clusters, load assignments and routes of an upstream's
// chain to a proxy's resources.
func (t *translator) addChain(p *catalog.Proxy, upstream string, ch *chainResources, settings upstreamSettings, pr *proxyResources) {
	for i, res := range ch.targets {
		c, err := t.cluster(res, settings)
		if err != nil {
			t.problem(p.ID, "proxy %q: upstream %q: %v", p.ID, upstream, err)
		}
		if conflict := pr.addCluster(c, ch.loads[i], upstream); conflict != "" {
			t.problem(p.ID, "proxy %q: cluster %q is reached through upstreams %q and %q with different settings; those of %q apply",
				p.ID, res.target.clusterName(), conflict, upstream, conflict)
		}
	}
	if ch.routes != nil {
		pr.addRoute(ch.routes)
	}
}

// isHTTP reports whether a protocol is proxied at L7.
func isHTTP(protocol string) bool {
	switch protocol {
	case catalog.ProtocolHTTP, catalog.ProtocolHTTP2, catalog.ProtocolGRPC:
		return true
	}
	return false
}

// proxyResources collects one proxy's resources, each name once.
type proxyResources struct {
	r        *Resources
	clusters map[string]clusterUse
	routes   map[string]bool
}

// clusterUse is a cluster in a proxy's resources and the upstream that
// added it first.
type clusterUse struct {
	cluster  *clusterv3.Cluster
	upstream string
}

func newProxyResources() *proxyResources {
	return &proxyResources{r: &Resources{}, clusters: map[string]clusterUse{}, routes: map[string]bool{}}
}

// addCluster adds a cluster and its load assignment unless the proxy has
// it already. When the proxy has a different cluster of that name, added
// for another upstream, the first stays and addCluster returns that
// upstream's name.
func (pr *proxyResources) addCluster(c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment, upstream string) string {
	if prev, ok := pr.clusters[c.Name]; ok {
		if prev.cluster != c && !proto.Equal(prev.cluster, c) {
			return prev.upstream
		}
		return ""
	}
	pr.clusters[c.Name] = clusterUse{c, upstream}
	pr.r.Clusters = append(pr.r.Clusters, c)
	pr.r.Endpoints = append(pr.r.Endpoints, cla)
	return ""
}

func (pr *proxyResources) addRoute(rc *routev3.RouteConfiguration) {
	if !pr.routes[rc.Name] {
		pr.routes[rc.Name] = true
		pr.r.Routes = append(pr.r.Routes, rc)
	}
}

func sortResources(r *Resources) {
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].Name < r.Listeners[j].Name })
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].Name < r.Clusters[j].Name })
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].ClusterName < r.Endpoints[j].ClusterName })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].Name < r.Routes[j].Name })
	sort.Slice(r.Secrets, func(i, j int) bool { return r.Secrets[i].Name < r.Secrets[j].Name })
}
