package config

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// What the control plane says of the clusters and listeners it sends, in
// their metadata.filter_metadata[EndpointMetadata] (docs/xds.md, "Gateway
// and peer metadata"): the target a cluster leads to, and the kind of
// gateway a listener serves. Compile reads them once; the data plane
// never looks at metadata. Fields not named here are ignored; a named
// field that is not a string, and a gateway kind not listed, are refused.
const (
	TargetServiceField    = "service"
	TargetDatacenterField = "datacenter"
	TargetPeerField       = "peer"
	GatewayField          = "gateway"
)

// Target is what a cluster leads to, as the control plane states it: the
// gateway metrics' labels and what tells a failure to reach a peer from
// another connect failure. The zero Target: the control plane said
// nothing.
type Target struct {
	// Service is the Consul service the cluster's traffic goes to.
	Service string
	// Datacenter is the service's datacenter when the service is in this
	// mesh; empty for a peer's service.
	Datacenter string
	// Peer is the cluster peer on the other side: the one the service is
	// imported from (Datacenter empty), or, on a mesh gateway's chain of
	// a local service, the one it is exported to.
	Peer string
}

// FromPeer reports whether the service is a peer's: the cluster's hosts
// are mesh gateways (the peer's, or this cluster's in MeshGateway mode
// local) that pass its TLS on to the peer's instances.
func (t Target) FromPeer() bool { return t.Peer != "" && t.Datacenter == "" }

// compileTarget reads a cluster's target from its metadata.
func compileTarget(md *corev3.Metadata) (Target, error) {
	fields := md.GetFilterMetadata()[EndpointMetadata].GetFields()
	var t Target
	for _, f := range []struct {
		name string
		dst  *string
	}{{TargetServiceField, &t.Service}, {TargetDatacenterField, &t.Datacenter}, {TargetPeerField, &t.Peer}} {
		var err error
		if *f.dst, err = stringField(fields, f.name); err != nil {
			return Target{}, err
		}
	}
	if t.Service == "" && t != (Target{}) {
		return Target{}, fmt.Errorf("metadata: filter_metadata[%q] names a datacenter or peer but no %s", EndpointMetadata, TargetServiceField)
	}
	return t, nil
}

// Gateway is the kind of gateway a listener serves, from its metadata:
// the gateway label of the gateway metrics. NotGateway: a sidecar's
// listener.
type Gateway uint8

const (
	NotGateway Gateway = iota
	MeshGateway
	TerminatingGateway
	IngressGateway
	APIGateway
)

// gatewayKinds are Consul's names of the kinds, as the metadata and the
// metrics spell them.
var gatewayKinds = [...]string{
	NotGateway:         "",
	MeshGateway:        "mesh-gateway",
	TerminatingGateway: "terminating-gateway",
	IngressGateway:     "ingress-gateway",
	APIGateway:         "api-gateway",
}

func (g Gateway) String() string { return gatewayKinds[g] }

// compileGateway reads a listener's gateway kind from its metadata.
func compileGateway(md *corev3.Metadata) (Gateway, error) {
	kind, err := stringField(md.GetFilterMetadata()[EndpointMetadata].GetFields(), GatewayField)
	if err != nil || kind == "" {
		return NotGateway, err
	}
	for g, name := range gatewayKinds {
		if g != int(NotGateway) && name == kind {
			return Gateway(g), nil
		}
	}
	return NotGateway, fmt.Errorf("metadata: filter_metadata[%q].%s %q is not a gateway kind (%s, %s, %s or %s)",
		EndpointMetadata, GatewayField, kind, MeshGateway, TerminatingGateway, IngressGateway, APIGateway)
}

// stringField returns fields[name], "" when absent, and an error naming
// the field when it is not a string.
func stringField(fields map[string]*structpb.Value, name string) (string, error) {
	v, ok := fields[name]
	if !ok {
		return "", nil
	}
	s, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", fmt.Errorf("metadata: filter_metadata[%q].%s must be a string", EndpointMetadata, name)
	}
	return s.StringValue, nil
}
