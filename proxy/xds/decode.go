package xds

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceType describes one subscribed xDS resource type.
type resourceType struct {
	url       string
	kind      string // used in error messages: `listener "x": ...`
	fullState bool   // SotW responses carry every resource of the type
	wildcard  bool   // subscribed with a wildcard rather than by name
	new       func() proto.Message
	name      func(proto.Message) string
}

// resourceTypes in the order Envoy subscribes on a new stream: clusters
// before their endpoints, listeners before their routes, and the secrets
// both reference last.
var resourceTypes = []*resourceType{
	{url: ClusterType, kind: "cluster", fullState: true, wildcard: true,
		new:  func() proto.Message { return new(clusterv3.Cluster) },
		name: func(m proto.Message) string { return m.(*clusterv3.Cluster).GetName() }},
	{url: EndpointType, kind: "cluster load assignment",
		new:  func() proto.Message { return new(endpointv3.ClusterLoadAssignment) },
		name: func(m proto.Message) string { return m.(*endpointv3.ClusterLoadAssignment).GetClusterName() }},
	{url: ListenerType, kind: "listener", fullState: true, wildcard: true,
		new:  func() proto.Message { return new(listenerv3.Listener) },
		name: func(m proto.Message) string { return m.(*listenerv3.Listener).GetName() }},
	{url: RouteType, kind: "route configuration",
		new:  func() proto.Message { return new(routev3.RouteConfiguration) },
		name: func(m proto.Message) string { return m.(*routev3.RouteConfiguration).GetName() }},
	{url: SecretType, kind: "secret",
		new:  func() proto.Message { return new(tlsv3.Secret) },
		name: func(m proto.Message) string { return m.(*tlsv3.Secret).GetName() }},
}

func lookupType(url string) *resourceType {
	for _, t := range resourceTypes {
		if t.url == url {
			return t
		}
	}
	return nil
}

var wrappedResourceType = "type.googleapis.com/" + string((&discoveryv3.Resource{}).ProtoReflect().Descriptor().FullName())

// decode unpacks and validates the resources of one response. The error
// names the first bad resource and why it is bad.
func decode(t *resourceType, anys []*anypb.Any) (map[string]proto.Message, error) {
	out := make(map[string]proto.Message, len(anys))
	for i, a := range anys {
		m, err := decodeOne(t, a)
		if err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		name := t.name(m)
		if name == "" {
			return nil, fmt.Errorf("resource %d: %s without a name", i, t.kind)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s %q: sent twice in one response", t.kind, name)
		}
		if v, ok := m.(interface{ ValidateAll() error }); ok {
			if err := v.ValidateAll(); err != nil {
				return nil, fmt.Errorf("%s %q: invalid: %w", t.kind, name, err)
			}
		}
		out[name] = m
	}
	return out, nil
}

func decodeOne(t *resourceType, a *anypb.Any) (proto.Message, error) {
	if a.GetTypeUrl() == wrappedResourceType {
		var r discoveryv3.Resource
		if err := a.UnmarshalTo(&r); err != nil {
			return nil, fmt.Errorf("undecodable %s: %w", a.GetTypeUrl(), err)
		}
		a = r.GetResource()
	}
	if a.GetTypeUrl() != t.url {
		return nil, fmt.Errorf("type %q in a %s response", a.GetTypeUrl(), t.url)
	}
	m := t.new()
	if err := a.UnmarshalTo(m); err != nil {
		return nil, fmt.Errorf("undecodable %s: %w", t.kind, err)
	}
	return m, nil
}
