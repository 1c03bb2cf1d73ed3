package translate

import (
	"maps"
	"slices"

	"github.com/weft-mesh/weft/catalog"
)

// input names one part of a catalog snapshot that translation reads: a
// service's endpoints, one config entry, or a mesh-wide setting (name
// empty). The translator reads the snapshot only through the methods
// below, which record each input read, so a proxy's resources are known to
// depend on those inputs alone (Translator re-translates a proxy only when
// one of them changed).
type input struct {
	kind inputKind
	name string
}

type inputKind uint8

const (
	inEndpoints       inputKind = iota // Endpoints[name]
	inServiceDefaults                  // ServiceDefaults[name]
	inResolver                         // ServiceResolvers[name]
	inSplitter                         // ServiceSplitters[name]
	inRouter                           // ServiceRouters[name]
	inIntentions                       // Intentions[name], IntentionsNotApplied[name]
	inProxyDefaults                    // ProxyDefaults
	inMeshEntry                        // Mesh
	inACLPolicy                        // ACLDefaultPolicy
	inServiceNames                     // the set of keys of Endpoints
	inPeer                             // Peers[name]
	inImported                         // Imported[key]
	inExports                          // Exports[service]
	inPeerNames                        // the set of keys of Peers
	inIngress                          // IngressGateways[name]
	inMeshGateways                     // MeshGateways
	inImportedNames                    // the set of keys of Imported
	inTerminating                      // TerminatingGateways[name]
	inLinked                           // LinkedInstances[service]
	inAPIGateway                       // APIGateways[name]
	// inLoadEndpoints is Endpoints[name] read for a load assignment only
	// (loadEndpoints): a change of it needs that load assignment built
	// again, not the proxy translated again (Translator.reload).
	inLoadEndpoints
	// inMeshRoots is Mesh.RootsPEM read other than through the trust
	// bundle secret (a peered public listener's per-trust-domain roots):
	// a roots change translates only those proxies again and hands every
	// other the new bundle secret (Translator.swapRoots).
	inMeshRoots
	inIntentionsNotApplied // IntentionsNotApplied[name]
)

// read records that the current translation read an input.
func (t *translator) read(kind inputKind, name string) {
	t.inputs = append(t.inputs, input{kind, name})
}

// inputsSince returns a copy of the inputs recorded since mark, for a
// memoized result to replay when it is reused.
func (t *translator) inputsSince(mark int) []input {
	return slices.Clone(t.inputs[mark:])
}

// replay records the inputs of a memoized result as read again.
func (t *translator) replay(in []input) {
	t.inputs = append(t.inputs, in...)
}

// endpoints are the dialable instances of a service.
func (t *translator) endpoints(service string) []catalog.Endpoint {
	t.read(inEndpoints, service)
	if eps, ok := t.usable[service]; ok {
		return eps
	}
	return t.snap.Endpoints[service]
}

// loadEndpoints are the dialable instances of a service, read for a load
// assignment and nothing else: the reads of load assignments whose
// rebuilding a proxy records as a loadRecipe.
func (t *translator) loadEndpoints(service string) []catalog.Endpoint {
	t.read(inLoadEndpoints, service)
	if eps, ok := t.usable[service]; ok {
		return eps
	}
	return t.snap.Endpoints[service]
}

// serviceNames are the services with instances, sorted.
func (t *translator) serviceNames() []string {
	t.read(inServiceNames, "")
	return slices.Sorted(maps.Keys(t.snap.Endpoints))
}

// inMesh reports whether a service has an instance in the mesh: a
// sidecar, or a terminating gateway it is linked to, registered in Consul
// (a key of Endpoints). It reads the set of those keys only, so an
// instance's health does not translate the caller again.
func (t *translator) inMesh(service string) bool {
	t.read(inServiceNames, "")
	_, ok := t.snap.Endpoints[service]
	return ok
}

func (t *translator) serviceDefaults(service string) *catalog.ServiceDefaults {
	t.read(inServiceDefaults, service)
	return t.snap.ServiceDefaults[service]
}

// protocolOf is the protocol of a service as catalog.Snapshot.ProtocolOf
// resolves it.
func (t *translator) protocolOf(service string) string {
	t.read(inServiceDefaults, service)
	t.read(inProxyDefaults, "")
	return t.snap.ProtocolOf(service)
}

func (t *translator) proxyDefaults() *catalog.ProxyDefaults {
	t.read(inProxyDefaults, "")
	return t.snap.ProxyDefaults
}

// proxyModeOf is a sidecar's proxy mode and transparent outbound port as
// catalog.Snapshot.ProxyModeOf resolves them.
func (t *translator) proxyModeOf(p *catalog.Proxy) (string, int) {
	t.read(inServiceDefaults, p.DestinationName)
	t.read(inProxyDefaults, "")
	return t.snap.ProxyModeOf(p)
}

func (t *translator) resolver(service string) *catalog.ServiceResolver {
	t.read(inResolver, service)
	return t.snap.ServiceResolvers[service]
}

func (t *translator) splitter(service string) *catalog.ServiceSplitter {
	t.read(inSplitter, service)
	return t.snap.ServiceSplitters[service]
}

func (t *translator) router(service string) *catalog.ServiceRouter {
	t.read(inRouter, service)
	return t.snap.ServiceRouters[service]
}

// intentionsFor returns the intentions deciding who may call a service,
// highest precedence first.
func (t *translator) intentionsFor(service string) []catalog.Intention {
	t.read(inIntentions, service)
	t.read(inIntentions, catalog.Wildcard)
	return intentionsFor(t.snap, service)
}

// intentionsNotApplied is what the service-intentions entry of dest sets
// that is not applied; nil when nothing.
func (t *translator) intentionsNotApplied(dest string) *catalog.EntryNote {
	t.read(inIntentionsNotApplied, dest)
	return t.snap.IntentionsNotApplied[dest]
}

// defaultAllow resolves the default intention policy.
func (t *translator) defaultAllow() bool {
	if t.mesh.DefaultPolicy == "" {
		t.read(inACLPolicy, "")
	}
	return t.mesh.defaultAllow(t.snap)
}

// meshDestinationsOnly is the mesh config entry's setting.
func (t *translator) meshDestinationsOnly() bool {
	m := t.meshEntry()
	return m != nil && m.MeshDestinationsOnly
}

// peer is an ACTIVE peering, or nil.
func (t *translator) peer(name string) *catalog.Peer {
	t.read(inPeer, name)
	return t.snap.Peers[name]
}

// meshGatewayModeOf is a sidecar's MeshGateway.Mode for an upstream, as
// catalog.Snapshot.MeshGatewayModeOf resolves it.
func (t *translator) meshGatewayModeOf(p *catalog.Proxy, u catalog.Upstream) string {
	t.read(inServiceDefaults, p.DestinationName)
	t.read(inProxyDefaults, "")
	return t.snap.MeshGatewayModeOf(p, u)
}

// localMeshGateways are this cluster's mesh gateways as endpoints.
func (t *translator) localMeshGateways() []catalog.Endpoint {
	t.read(inMeshGateways, "")
	return t.snap.MeshGateways
}

// importedServices are every imported service, by key order.
func (t *translator) importedServices() []*catalog.ImportedService {
	t.read(inImportedNames, "")
	var out []*catalog.ImportedService
	for _, key := range slices.Sorted(maps.Keys(t.snap.Imported)) {
		t.read(inImported, key)
		out = append(out, t.snap.Imported[key])
	}
	return out
}

// linkedServices are the services linked to a terminating gateway
// service, sorted by name.
func (t *translator) linkedServices(gateway string) []catalog.LinkedService {
	t.read(inTerminating, gateway)
	if gw := t.snap.TerminatingGateways[gateway]; gw != nil {
		return gw.Services
	}
	return nil
}

// linkedInstances are the instances of a service linked to a terminating
// gateway.
func (t *translator) linkedInstances(service string) []catalog.Endpoint {
	t.read(inLinked, service)
	return t.snap.LinkedInstances[service]
}

// linkedUnregistered reports whether Consul has answered, for a service
// linked to a terminating gateway, that the service has no instance; not
// before its instances were first fetched.
func (t *translator) linkedUnregistered(service string) bool {
	t.read(inLinked, service)
	eps, fetched := t.snap.LinkedInstances[service]
	return fetched && len(eps) == 0
}

// ingressEntry is the ingress-gateway entry of a gateway service, or nil.
func (t *translator) ingressEntry(name string) *catalog.IngressGateway {
	t.read(inIngress, name)
	return t.snap.IngressGateways[name]
}

func (t *translator) apiGatewayEntry(name string) *catalog.APIGateway {
	t.read(inAPIGateway, name)
	return t.snap.APIGateways[name]
}

// peerTrustDomain is the trust domain of a peer's identities, empty when
// the peer is unknown or its roots name none.
func (t *translator) peerTrustDomain(peer string) string {
	if p := t.peer(peer); p != nil {
		return p.TrustDomain
	}
	return ""
}

// peers are every ACTIVE peering, sorted by name.
func (t *translator) peers() []*catalog.Peer {
	t.read(inPeerNames, "")
	names := slices.Sorted(maps.Keys(t.snap.Peers))
	out := make([]*catalog.Peer, len(names))
	for i, n := range names {
		out[i] = t.peer(n)
	}
	return out
}

// imported is a service a peer exports here, or nil.
func (t *translator) imported(peer, service string) *catalog.ImportedService {
	key := catalog.ImportedKey(peer, service)
	t.read(inImported, key)
	return t.snap.Imported[key]
}

// exportedTo are the peers a local service is exported to.
func (t *translator) exportedTo(service string) []string {
	t.read(inExports, service)
	return t.snap.ExportedTo(service)
}

// exportedServices are the local services exported to some peer, sorted.
func (t *translator) exportedServices() []string {
	t.read(inExports, "")
	return slices.Sorted(maps.Keys(t.snap.Exports))
}

// meshEntry is the mesh config entry, or nil.
func (t *translator) meshEntry() *catalog.Mesh {
	t.read(inMeshEntry, "")
	return t.snap.Mesh
}
