package xds

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
)

// Resource type URLs of the Envoy v3 API that the client subscribes to.
const (
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	SecretType   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

// Resources is the accepted state of one resource type.
//
// Resources and everything it points to are immutable: the client builds
// new maps for every update. Readers must not modify them.
type Resources struct {
	// Version is the version_info of the last accepted response.
	Version string
	// Received reports whether a response of this type has been accepted.
	Received bool
	// Items maps resource names to decoded, validated resources:
	// *listenerv3.Listener, *clusterv3.Cluster,
	// *routev3.RouteConfiguration, *endpointv3.ClusterLoadAssignment or
	// *tlsv3.Secret.
	Items map[string]proto.Message
}

// State is one candidate or accepted configuration: the resources of every
// type, as handed to the Applier and exposed by Client.State.
type State struct {
	Listeners Resources
	Clusters  Resources
	Routes    Resources
	Endpoints Resources
	Secrets   Resources
}

// Get returns the resources of typeURL (zero Resources for unknown types).
func (s State) Get(typeURL string) Resources {
	if r := s.ptr(typeURL); r != nil {
		return *r
	}
	return Resources{}
}

func (s *State) ptr(typeURL string) *Resources {
	switch typeURL {
	case ListenerType:
		return &s.Listeners
	case ClusterType:
		return &s.Clusters
	case RouteType:
		return &s.Routes
	case EndpointType:
		return &s.Endpoints
	case SecretType:
		return &s.Secrets
	}
	return nil
}

// with returns a copy of s in which typeURL's resources are r.
func (s State) with(typeURL string, r Resources) State {
	*s.ptr(typeURL) = r
	return s
}

// Subscriptions are the non-wildcard resource names the current
// configuration depends on; the client subscribes to exactly these.
type Subscriptions struct {
	// Routes are RouteConfiguration names referenced by listeners (RDS).
	Routes []string
	// Endpoints are ClusterLoadAssignment names of EDS clusters.
	Endpoints []string
	// Secrets are SDS secret names (trust bundles) referenced over ADS by
	// listeners' and clusters' TLS contexts.
	Secrets []string
}

func (s Subscriptions) names(typeURL string) []string {
	switch typeURL {
	case RouteType:
		return s.Routes
	case EndpointType:
		return s.Endpoints
	case SecretType:
		return s.Secrets
	}
	return nil
}

func (s Subscriptions) normalize() Subscriptions {
	return Subscriptions{Routes: sortedSet(s.Routes), Endpoints: sortedSet(s.Endpoints), Secrets: sortedSet(s.Secrets)}
}

func sortedSet(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// keepOnly returns the items whose name is in names (sorted).
func keepOnly(items map[string]proto.Message, names []string) map[string]proto.Message {
	out := make(map[string]proto.Message, len(names))
	for name, m := range items {
		if _, ok := slices.BinarySearch(names, name); ok {
			out[name] = m
		}
	}
	return out
}

// merge builds the candidate resources of one type from a response.
// Listener and Cluster responses carry the whole state of the world; route
// and endpoint responses update the named resources and keep the others
// still subscribed.
func merge(t *resourceType, prev Resources, got map[string]proto.Message, version string, subscribed []string) Resources {
	next := Resources{Version: version, Received: true}
	if t.fullState {
		next.Items = got
		return next
	}
	next.Items = keepOnly(prev.Items, subscribed)
	maps.Copy(next.Items, keepOnly(got, subscribed))
	return next
}
