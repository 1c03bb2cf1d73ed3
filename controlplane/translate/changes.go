package translate

import "github.com/weft-mesh/weft/catalog"

// changedInputs lists the inputs that differ between two snapshots of one
// datacenter, from their catalog.Diff. The other fields of the Diff are
// Translate's: a changed proxy registration is translated again, another
// datacenter is a full translation, the version does not matter, and the
// exported-services entry concerns no proxy.
func changedInputs(d catalog.Diff) map[input]bool {
	changed := map[input]bool{}
	mark := func(kind inputKind, keys catalog.KeyDiff) {
		for _, name := range keys.Changed {
			changed[input{kind, name}] = true
		}
	}
	mark(inEndpoints, d.Endpoints)
	mark(inLoadEndpoints, d.Endpoints)
	if d.Endpoints.KeysChanged {
		changed[input{kind: inServiceNames}] = true
	}
	mark(inServiceDefaults, d.ServiceDefaults)
	mark(inResolver, d.ServiceResolvers)
	mark(inSplitter, d.ServiceSplitters)
	mark(inRouter, d.ServiceRouters)
	mark(inIntentions, d.Intentions)
	mark(inIntentionsNotApplied, d.IntentionsNotApplied)
	if d.ProxyDefaults {
		changed[input{kind: inProxyDefaults}] = true
	}
	if d.Mesh {
		changed[input{kind: inMeshEntry}] = true
	}
	if d.ACLDefaultPolicy {
		changed[input{kind: inACLPolicy}] = true
	}
	mark(inPeer, d.Peers)
	if d.Peers.KeysChanged {
		changed[input{kind: inPeerNames}] = true
	}
	mark(inImported, d.Imported)
	if d.Imported.KeysChanged {
		changed[input{kind: inImportedNames}] = true
	}
	if d.MeshGateways {
		changed[input{kind: inMeshGateways}] = true
	}
	mark(inIngress, d.IngressGateways)
	mark(inAPIGateway, d.APIGateways)
	mark(inTerminating, d.TerminatingGateways)
	mark(inLinked, d.LinkedInstances)
	mark(inExports, d.Exports)
	if d.Exports.KeysChanged {
		changed[input{kind: inExports}] = true // the set of exported services
	}
	return changed
}
