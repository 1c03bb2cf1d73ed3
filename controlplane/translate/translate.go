package translate

import (
	"cmp"
	"fmt"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
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
	// TrustDomainAliases are other trust domains whose identities are
	// accepted as the same services' — peers' certificates and intention
	// sources — while a mesh moves from one trust domain to another
	// (certs/consulca's switch to Consul's). Usually empty.
	TrustDomainAliases []string
	// RootsPEM is the trust bundle, the root signing leaves first.
	RootsPEM []byte
	// DefaultPolicy decides calls no intention matches: "allow" or "deny";
	// empty follows Consul's ACL default policy, and allows when unknown.
	DefaultPolicy string
	// Tracing, when set, has every HTTP listener trace requests and export
	// spans over OTLP/gRPC to the collector.
	Tracing *Tracing
	// HealthyPanicThreshold, when set, is every upstream cluster's
	// common_lb_config.healthy_panic_threshold, in percent (0 turns
	// panic mode off); nil leaves it unset: the sidecar's default, 50,
	// as Envoy's.
	HealthyPanicThreshold *float64

	// tlsIncoming and tlsOutgoing are the mesh entry's TLS.Incoming and
	// TLS.Outgoing as the tls_params of the mesh's mTLS; the translator
	// sets them from its snapshot (withMeshTLS).
	tlsIncoming, tlsOutgoing *tlsv3.TlsParameters
}

// trustDomains are the trust domain and its aliases.
func (m Mesh) trustDomains() []string {
	return append([]string{m.TrustDomain}, m.TrustDomainAliases...)
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
	// Partial says that Changed lists every proxy whose resources
	// differ from the previous Result of the same Translator: added,
	// translated again or removed (every other proxy's *Resources is the
	// previous one). A consumer holding the previous Result need only
	// look at those. Without Partial (the first Result, a mesh-wide
	// change, Translate), any proxy may have changed.
	Partial bool
	Changed []string
	// Problems lists, per proxy ID, the parts of its registration that
	// could not be translated and were left out, each naming what is wrong.
	Problems map[string][]error
}

// validPort reports whether port is a TCP port a listener or cluster can use.
func validPort(port int) bool { return port > 0 && port <= 65535 }

// Translate builds every proxy's resources from the catalog. It is a pure
// function of its arguments; NewTranslator gives the same result for a
// sequence of snapshots at the cost of what changed between them.
func Translate(snap *catalog.Snapshot, mesh Mesh) *Result {
	return NewTranslator().Translate(snap, mesh)
}

// translator memoizes, within one Translate call, everything that does not
// depend on the proxy: compiled chains with their route configurations,
// resolved targets with their load assignments, subset filters, and
// clusters (by resolved target and upstream settings). Proxies share these
// protos by pointer. It reads the snapshot through the methods in
// inputs.go, which record what each proxy's resources depend on.
type translator struct {
	snap *catalog.Snapshot
	mesh Mesh
	// usable replaces the instances of services that have some no proxy
	// could dial (usableEndpoints).
	usable map[string][]catalog.Endpoint
	roots  *tlsv3.Secret      // shared by every proxy; nil without mTLS
	otlp   *clusterv3.Cluster // the span collector; nil without tracing

	chains      map[chainKey]*chainResources
	resolutions map[resolveKey]resolveResult
	filters     map[string]filterResult
	clusters    map[clusterKey]clusterResult
	loads       map[*resolution]loadResult
	childLoads  map[string]loadResult // local failover children's, by name (aggregate.go)
	children    map[childKey]clusterResult
	plain       map[target]*resolution
	// outbound and localApps are the upstream listeners and local app
	// clusters built so far, shared by every proxy that would build the
	// same one (sharedOutbound, sharedLocalApp).
	outbound  map[outboundKey]*listenerv3.Listener
	localApps map[localAppKey]*clusterv3.Cluster
	// publics are the public listeners' filters by service, and
	// downstreamTLS their transport sockets without peers (plain, HTTP).
	publics       map[publicKey]publicResult
	downstreamTLS [2]*corev3.TransportSocket
	// recipes rebuild the load assignments built from loadEndpoints, by
	// the load assignment; a proxy keeps those of its own (proxyEntry).
	recipes map[*endpointv3.ClusterLoadAssignment]loadSource
	// part marks the public listener of the proxy being translated.
	part partMark
	// tlsProblems are the mesh entry's TLS settings that could not be
	// applied, reported for every sidecar (entryNotes).
	tlsProblems []string

	// inputs are the parts of the snapshot read for the proxy being
	// translated, and problems what could not be translated for it.
	inputs   []input
	problems []error
	// sorted is translateProxy's scratch for sorting inputs.
	sorted []input
}

func newTranslator(snap *catalog.Snapshot, mesh Mesh, usable map[string][]catalog.Endpoint) *translator {
	mesh, tlsProblems := withMeshTLS(mesh, snap.Mesh)
	return &translator{
		snap:        snap,
		mesh:        mesh,
		tlsProblems: tlsProblems,
		usable:      usable,
		chains:      map[chainKey]*chainResources{},
		resolutions: map[resolveKey]resolveResult{},
		filters:     map[string]filterResult{},
		clusters:    map[clusterKey]clusterResult{},
		loads:       map[*resolution]loadResult{},
		childLoads:  map[string]loadResult{},
		children:    map[childKey]clusterResult{},
		plain:       map[target]*resolution{},
		outbound:    map[outboundKey]*listenerv3.Listener{},
		localApps:   map[localAppKey]*clusterv3.Cluster{},
		publics:     map[publicKey]publicResult{},
		recipes:     map[*endpointv3.ClusterLoadAssignment]loadSource{},
	}
}

// problem records what could not be translated for the current proxy.
func (t *translator) problem(format string, args ...any) {
	t.problems = append(t.problems, fmt.Errorf(format, args...))
}

// EntryNotApplied is a proxy's problem that restates what a config entry
// sets but Weft does not apply, the entry's notes in
// catalog.Snapshot.NotApplied. Callers that log problems log those notes
// once per entry and version instead of once per proxy.
type EntryNotApplied struct{ msg string }

func (e *EntryNotApplied) Error() string { return e.msg }

// notApplied records, for the current proxy, the notes of a config entry
// that concerns it.
func (t *translator) notApplied(p *catalog.Proxy, entry string, notes []string) {
	if len(notes) > 0 {
		t.problems = append(t.problems, &EntryNotApplied{fmt.Sprintf("proxy %q: %s: not supported and left out: %s", p.ID, entry, strings.Join(notes, ", "))})
	}
}

// entryNotes records the notes of every entry that concerns the whole
// proxy: its service's service-defaults, proxy-defaults, mesh, and the
// service-intentions of its service and of "*".
func (t *translator) entryNotes(p *catalog.Proxy) {
	if sd := t.serviceDefaults(p.DestinationName); sd != nil {
		t.notApplied(p, fmt.Sprintf("service-defaults %q", sd.Name), sd.Unsupported)
	}
	if pd := t.proxyDefaults(); pd != nil {
		t.notApplied(p, "proxy-defaults", pd.Unsupported)
	}
	if m := t.meshEntry(); m != nil {
		t.notApplied(p, "mesh", m.Unsupported)
	}
	for _, msg := range t.tlsProblems {
		t.problem("proxy %q: mesh %s", p.ID, msg)
	}
	for _, dest := range []string{p.DestinationName, catalog.Wildcard} {
		if n := t.intentionsNotApplied(dest); n != nil {
			t.notApplied(p, fmt.Sprintf("service-intentions %q", n.Name), n.Fields)
		}
	}
}

func (t *translator) proxy(p *catalog.Proxy) *Resources {
	switch p.Kind {
	case "":
	case catalog.KindMeshGateway:
		return withGatewayMetadata(t.meshGateway(p), p.Kind)
	case catalog.KindIngressGateway:
		return withGatewayMetadata(t.ingressGateway(p), p.Kind)
	case catalog.KindTerminatingGateway:
		return withGatewayMetadata(t.terminatingGateway(p), p.Kind)
	case catalog.KindAPIGateway:
		return withGatewayMetadata(t.apiGateway(p), p.Kind)
	default:
		t.problem("proxy %q: gateways of kind %q are not supported", p.ID, p.Kind)
		return &Resources{}
	}
	pr := newProxyResources()
	t.entryNotes(p)
	protocol := cmp.Or(p.Protocol, t.protocolOf(p.DestinationName))
	if !validPort(p.Port) || !validPort(p.LocalPort) {
		t.problem("proxy %q: public listener needs port and local_service_port, got port=%d local_service_port=%d", p.ID, p.Port, p.LocalPort)
	} else {
		pr.r.Listeners = append(pr.r.Listeners, t.publicListenerPart(p, protocol))
		pr.r.Clusters = append(pr.r.Clusters, t.sharedLocalApp(p, protocol))
	}
	for _, u := range p.Upstreams {
		t.upstream(p, u, pr)
	}
	if mode, port := t.proxyModeOf(p); mode == catalog.ModeTransparent {
		t.transparent(p, port, pr)
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

// publicListenerPart builds the public listener and marks what it read
// and reported (t.part), so that a change only it read (an intention)
// builds it again alone (Translator.reload).
func (t *translator) publicListenerPart(p *catalog.Proxy, protocol string) *listenerv3.Listener {
	in, problems := len(t.inputs), len(t.problems)
	l := t.publicListener(p, protocol)
	t.part = partMark{
		build:    func(t *translator) *listenerv3.Listener { return t.publicListener(p, protocol) },
		listener: l,
		inputs:   [2]int{in, len(t.inputs)},
		problems: [2]int{problems, len(t.problems)},
	}
	return l
}

func (t *translator) publicListener(p *catalog.Proxy, protocol string) *listenerv3.Listener {
	addr := p.Address
	if addr == "" {
		addr = "0.0.0.0"
	}
	http := isHTTP(protocol)
	var ts *corev3.TransportSocket
	if t.mesh.TrustDomain != "" {
		if peers := t.peersCalling(p.DestinationName); len(peers) > 0 {
			t.read(inMeshRoots, "")
			ts = peeredDownstreamTLS(t.mesh, peers, http)
		} else {
			ts = t.sharedDownstreamTLS(http)
		}
	}
	return listenerWith(PublicListenerName, socketAddress(addr, p.Port), corev3.TrafficDirection_INBOUND, ts, t.publicFilters(p.DestinationName, http)...)
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
		t.problem("proxy %q: upstream %q: needs destination_name and local_bind_port, got local_bind_port=%d", p.ID, u.DestinationName, u.LocalBindPort)
		return
	}
	for _, msg := range u.ConfigProblems {
		t.problem("proxy %q: upstream %q: config: %s; ignored", p.ID, u.DestinationName, msg)
	}
	if u.Peer != "" {
		t.peerUpstream(p, u, pr)
		return
	}
	settings, problems := t.upstreamSettingsFor(p, u)
	for _, msg := range problems {
		t.problem("proxy %q: upstream %q: %s", p.ID, u.DestinationName, msg)
	}
	ch := t.chainFor(u.DestinationName, cmp.Or(u.Datacenter, t.snap.Datacenter), isHTTP(settings.protocol))
	for _, msg := range ch.problems {
		t.problem("proxy %q: upstream %q: %s", p.ID, u.DestinationName, msg)
	}
	u.LocalBindAddress = cmp.Or(u.LocalBindAddress, defaultLocalAddress)
	pr.r.Listeners = append(pr.r.Listeners, t.sharedOutbound(p, u, ch))
	t.addChain(p, u.DestinationName, ch, settings, pr)
}

// addChain adds the clusters, load assignments and routes of an upstream's
// chain to a proxy's resources.
func (t *translator) addChain(p *catalog.Proxy, upstream string, ch *chainResources, settings upstreamSettings, pr *proxyResources) {
	t.addChainClusters(p, upstream, ch, settings, pr)
	if ch.routes != nil {
		pr.addRoute(ch.routes)
	}
}

// addChainClusters adds the clusters and load assignments of a chain.
func (t *translator) addChainClusters(p *catalog.Proxy, upstream string, ch *chainResources, settings upstreamSettings, pr *proxyResources) {
	for i, res := range ch.targets {
		t.addTargetCluster(p, upstream, res, ch.loads[i], settings, pr)
	}
}

// addTargetCluster adds the cluster of a resolved target, with its load
// assignment cla, or the aggregate cluster of a target failing over to a
// peer (aggregate.go), which builds its own.
func (t *translator) addTargetCluster(p *catalog.Proxy, upstream string, res *resolution, cla *endpointv3.ClusterLoadAssignment, settings upstreamSettings, pr *proxyResources) {
	if res.peerFailover() {
		t.addFailoverAggregate(p, upstream, res, settings, pr)
		return
	}
	c, err := t.cluster(res, settings)
	if err != nil {
		t.problem("proxy %q: upstream %q: %v", p.ID, upstream, err)
	}
	if conflict := pr.addCluster(c, cla, upstream); conflict != "" {
		t.problem("proxy %q: cluster %q is reached through upstreams %q and %q with different settings; those of %q apply",
			p.ID, res.target.clusterName(), conflict, upstream, conflict)
	}
}

// isHTTP reports whether a protocol is proxied at L7.
func isHTTP(protocol string) bool { return catalog.IsL7(protocol) }

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
	if cla != nil { // nil: a cluster without EDS (an aggregate)
		pr.r.Endpoints = append(pr.r.Endpoints, cla)
	}
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
