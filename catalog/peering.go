package catalog

import (
	"slices"
	"strings"
)

// Cluster peering and mesh gateways, as Consul models them: a peer is
// another Consul cluster this one has an ACTIVE peering with; services it
// exports to this cluster are imported, their instances replicated by
// Consul with the addresses of the peer's mesh gateways; this cluster's
// exported-services entry names the peers each local service is exported
// to, and its mesh gateways carry those peers' mTLS to the local sidecars
// by SNI, without terminating it.

// Peer is an ACTIVE peering, as /v1/peering/<name> describes it.
type Peer struct {
	// Name is this cluster's name for the peer (its PeerName).
	Name string
	// Datacenter is the peer's own datacenter name.
	Datacenter string
	// TrustDomain is the trust domain of the peer's SPIFFE IDs, read from
	// its CA roots' URI SAN (spiffe://<trust domain>); empty when the
	// roots name none.
	TrustDomain string
	// RootsPEM are the peer's Connect CA roots (PeerCAPems), which its
	// services' certificates chain to.
	RootsPEM []string
}

// ImportedService is a service a peer exports to this cluster.
type ImportedService struct {
	Peer    string
	Service string
	// Endpoints are its instances as Consul replicates them: each
	// address is the peer's mesh gateway, through which the instance is
	// reached.
	Endpoints []Endpoint
	// SNI is the server name a caller's TLS must send, which the peer's
	// mesh gateway routes by; SPIFFEIDs are the identities the instances
	// may present (PeerMeta, as Consul replicates it). Protocol is the
	// service's protocol in the peer, which callers use unless a local
	// entry says otherwise.
	SNI       string
	SPIFFEIDs []string
	Protocol  string
}

// ImportedKey is the key of an imported service in Snapshot.Imported.
func ImportedKey(peer, service string) string { return peer + "/" + service }

// MeshGateway.Mode values, as Consul names them. Weft routes a peered
// upstream through this cluster's mesh gateway in MeshGatewayLocal, and
// straight to the peer's gateway otherwise (remote; none and unset mean
// remote for peers, as in Consul).
const (
	MeshGatewayLocal  = "local"
	MeshGatewayRemote = "remote"
	MeshGatewayNone   = "none"
)

// MeshGatewayModeOf resolves a sidecar's MeshGateway.Mode for an
// upstream as Consul does: the upstream's own, else its service's
// service-defaults, else proxy-defaults.
func (s *Snapshot) MeshGatewayModeOf(p *Proxy, u Upstream) string {
	if u.MeshGatewayMode != "" {
		return u.MeshGatewayMode
	}
	if sd := s.ServiceDefaults[p.DestinationName]; sd != nil && sd.MeshGatewayMode != "" {
		return sd.MeshGatewayMode
	}
	if s.ProxyDefaults != nil {
		return s.ProxyDefaults.MeshGatewayMode
	}
	return ""
}

// Proxy kinds besides sidecars (whose Kind is empty).
const KindMeshGateway = "mesh-gateway"

// IsGateway reports whether a proxy is a gateway rather than a sidecar.
func (p *Proxy) IsGateway() bool { return p.Kind != "" }

// ExportedTo returns the peers a local service is exported to, sorted.
func (s *Snapshot) ExportedTo(service string) []string { return s.Exports[service] }

// PeerTrustDomain returns the trust domain of a peer's identities, empty
// when the peer is unknown or its roots name none.
func (s *Snapshot) PeerTrustDomain(peer string) string {
	if p := s.Peers[peer]; p != nil {
		return p.TrustDomain
	}
	return ""
}

// trustDomainOfURI returns the trust domain of a spiffe:// URI.
func trustDomainOfURI(uri string) string {
	rest, ok := strings.CutPrefix(uri, "spiffe://")
	if !ok {
		return ""
	}
	td, _, _ := strings.Cut(rest, "/")
	return td
}

// TrustDomainOfRoots returns the trust domain the first root carrying a
// spiffe:// URI SAN names, given each root's URI SANs.
func TrustDomainOfRoots(uriSANs [][]string) string {
	for _, uris := range uriSANs {
		if i := slices.IndexFunc(uris, func(u string) bool { return trustDomainOfURI(u) != "" }); i >= 0 {
			return trustDomainOfURI(uris[i])
		}
	}
	return ""
}
