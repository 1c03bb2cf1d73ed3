package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// What the control plane states for weft-proxy's gateway metrics and its
// peer_unreachable and no_exported_service reasons (docs/xds.md, "Gateway
// and peer metadata"), under filter_metadata["weft"] as endpoints' instance
// IDs are. A cluster that leads to a service names it: service, its
// datacenter when the service is in this mesh, and peer, the cluster peer
// on the other side — the one the service is imported from (no
// datacenter: the cluster's endpoints are mesh gateways), or, on a mesh
// gateway's chain of a local service, the one it is exported to. A
// gateway's listeners name its kind. Envoy ignores both.
const (
	serviceField    = "service"
	datacenterField = "datacenter"
	peerField       = "peer"
	gatewayField    = "gateway"
)

// IngressDNSNamesField lists, on an ingress gateway's TLS listeners, the
// DNS names (sorted, each once: catalog.IngressDNSNames) its
// IngressLeafSecret must carry; the gateway asks for a leaf with them and
// its own SPIFFE ID.
const IngressDNSNamesField = "ingress_dns_names"

// ingressDNSNamesMetadata is the metadata of an ingress listener with TLS.
func ingressDNSNamesMetadata(names []string) *corev3.Metadata {
	list := make([]*structpb.Value, len(names))
	for i, n := range names {
		list[i] = structpb.NewStringValue(n)
	}
	return weftMetadata(map[string]*structpb.Value{IngressDNSNamesField: structpb.NewListValue(&structpb.ListValue{Values: list})})
}

// targetMetadata is the metadata of a cluster leading to service, in
// datacenter (in this mesh) or imported from peer, or exported to peer
// when both are set.
func targetMetadata(service, datacenter, peer string) *corev3.Metadata {
	fields := map[string]*structpb.Value{serviceField: structpb.NewStringValue(service)}
	if datacenter != "" {
		fields[datacenterField] = structpb.NewStringValue(datacenter)
	}
	if peer != "" {
		fields[peerField] = structpb.NewStringValue(peer)
	}
	return weftMetadata(fields)
}

// metadata is the metadata of a target's cluster: a peer's service has no
// datacenter.
func (t target) metadata() *corev3.Metadata {
	if t.peer != "" {
		return targetMetadata(t.service, "", t.peer)
	}
	return targetMetadata(t.service, t.dc, "")
}

// gatewayMetadata is the metadata of a gateway's listener: its kind, as
// Consul names it (catalog.KindMeshGateway…).
func gatewayMetadata(kind string) *corev3.Metadata {
	return weftMetadata(map[string]*structpb.Value{gatewayField: structpb.NewStringValue(kind)})
}

func weftMetadata(fields map[string]*structpb.Value) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{endpointMetadata: {Fields: fields}}}
}

// withGatewayMetadata marks every listener of r, a gateway of kind's
// freshly built resources, with the kind, besides the fields it has.
func withGatewayMetadata(r *Resources, kind string) *Resources {
	for _, l := range r.Listeners {
		if fields := l.GetMetadata().GetFilterMetadata()[endpointMetadata].GetFields(); fields != nil {
			fields[gatewayField] = structpb.NewStringValue(kind)
			continue
		}
		l.Metadata = gatewayMetadata(kind)
	}
	return r
}
