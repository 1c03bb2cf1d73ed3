package xds

import (
	"crypto/sha256"
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

// digest identifies the serialized form of a resource: the SHA-256 of its
// Any's value. The same digest means the same bytes, hence the same
// decoded message (the name is part of the bytes).
type digest [sha256.Size]byte

// lookup returns the accepted message whose serialized form has sum, or
// nil.
type lookup func(sum digest) proto.Message

// byDigest looks r's resources up by digest, for a state-of-the-world
// response whose resources are named only inside their bytes.
func (r Resources) byDigest() lookup {
	names := make(map[digest]string, len(r.digests))
	for name, sum := range r.digests {
		names[sum] = name
	}
	return func(sum digest) proto.Message {
		if name, ok := names[sum]; ok {
			return r.Items[name]
		}
		return nil
	}
}

// named looks up the resource of r named name, for a delta response,
// which names its resources.
func (r Resources) named(name string) lookup {
	return func(sum digest) proto.Message {
		if s, ok := r.digests[name]; ok && s == sum {
			return r.Items[name]
		}
		return nil
	}
}

// unpacked is one resource of a response.
type unpacked struct {
	msg proto.Message
	sum digest
	// known: msg is an accepted message of the same bytes, already
	// validated.
	known bool
}

// validate runs the resource's generated validation, unless it was
// accepted before.
func (u unpacked) validate(t *resourceType, name string) error {
	if u.known {
		return nil
	}
	if v, ok := u.msg.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s %q: invalid: %w", t.kind, name, err)
		}
	}
	return nil
}

// decode unpacks and validates the resources of one state-of-the-world
// response. A resource whose bytes are those of one in prev (the
// accepted resources of the type) is not decoded again: it is prev's
// message, so that an unchanged resource stays the same pointer from one
// accepted state to the next, as on delta streams, and the compile step
// can tell it unchanged by pointer. The error names the first bad
// resource and why it is bad.
func decode(t *resourceType, anys []*anypb.Any, prev Resources) (Resources, error) {
	known := prev.byDigest()
	out := Resources{Items: make(map[string]proto.Message, len(anys)), digests: make(map[string]digest, len(anys))}
	for i, a := range anys {
		u, err := decodeOne(t, a, known)
		if err != nil {
			return Resources{}, fmt.Errorf("resource %d: %w", i, err)
		}
		name := t.name(u.msg)
		if name == "" {
			return Resources{}, fmt.Errorf("resource %d: %s without a name", i, t.kind)
		}
		if _, dup := out.Items[name]; dup {
			return Resources{}, fmt.Errorf("%s %q: sent twice in one response", t.kind, name)
		}
		if err := u.validate(t, name); err != nil {
			return Resources{}, err
		}
		out.Items[name], out.digests[name] = u.msg, u.sum
	}
	return out, nil
}

// decodeOne unpacks one resource, or finds it with known.
func decodeOne(t *resourceType, a *anypb.Any, known lookup) (unpacked, error) {
	if a.GetTypeUrl() == wrappedResourceType {
		var r discoveryv3.Resource
		if err := a.UnmarshalTo(&r); err != nil {
			return unpacked{}, fmt.Errorf("undecodable %s: %w", a.GetTypeUrl(), err)
		}
		a = r.GetResource()
	}
	if a.GetTypeUrl() != t.url {
		return unpacked{}, fmt.Errorf("type %q in a %s response", a.GetTypeUrl(), t.url)
	}
	u := unpacked{sum: sha256.Sum256(a.GetValue())}
	if u.msg = known(u.sum); u.msg != nil {
		u.known = true
		return u, nil
	}
	u.msg = t.new()
	if err := a.UnmarshalTo(u.msg); err != nil {
		return unpacked{}, fmt.Errorf("undecodable %s: %w", t.kind, err)
	}
	return u, nil
}
