package config

import (
	"fmt"
	"slices"
	"strings"

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
	// IngressDNSNamesField lists, on an ingress gateway's listener that
	// presents IngressLeafSecret, the DNS names that leaf carries.
	IngressDNSNamesField = "ingress_dns_names"
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

// compileIngressDNSNames reads a listener's IngressDNSNamesField: a list
// of DNS names, required on a listener presenting IngressLeafSecret
// (presents), refused on any other. It returns them sorted, each once.
func compileIngressDNSNames(md *corev3.Metadata, presents bool) ([]string, error) {
	v, ok := md.GetFilterMetadata()[EndpointMetadata].GetFields()[IngressDNSNamesField]
	switch {
	case !ok && presents:
		return nil, fmt.Errorf("metadata: a listener presenting %q needs filter_metadata[%q].%s, the DNS names that leaf carries", IngressLeafSecret, EndpointMetadata, IngressDNSNamesField)
	case ok && !presents:
		return nil, fmt.Errorf("metadata: filter_metadata[%q].%s is for a listener presenting %q; this one does not", EndpointMetadata, IngressDNSNamesField, IngressLeafSecret)
	case !ok:
		return nil, nil
	}
	list, isList := v.GetKind().(*structpb.Value_ListValue)
	if !isList {
		return nil, fmt.Errorf("metadata: filter_metadata[%q].%s must be a list of DNS names", EndpointMetadata, IngressDNSNamesField)
	}
	names := []string{}
	for i, item := range list.ListValue.GetValues() {
		name := item.GetStringValue()
		if err := checkDNSName(name); err != nil {
			return nil, fmt.Errorf("metadata: filter_metadata[%q].%s[%d]: %w", EndpointMetadata, IngressDNSNamesField, i, err)
		}
		names = append(names, strings.ToLower(name))
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// checkDNSName accepts a DNS name for a certificate: labels of letters,
// digits, hyphens and underscores, the first of which may be "*".
func checkDNSName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a DNS name", name)
	}
	for i, label := range strings.Split(name, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 || strings.ContainsFunc(label, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			return fmt.Errorf("%q is not a DNS name", name)
		}
	}
	return nil
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
