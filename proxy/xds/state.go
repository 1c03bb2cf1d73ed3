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
	// *tlsv3.Secret. A resource sent again with the same bytes keeps its
	// message, on delta and state-of-the-world streams alike: the same
	// pointer in two successive states means the same content.
	Items map[string]proto.Message
	// digests identify the serialized form each item was decoded from, by
	// name; decode reuses an item whose form comes again. Nil in a
	// Resources built by hand, which then reuses nothing.
	digests map[string]digest
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
	// Secrets are SDS secret names referenced over ADS by listeners' and
	// clusters' TLS contexts: trust bundles, and the certificates
	// listeners present to clients outside the mesh.
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

// keepOnly returns r with only the resources named in names (sorted), in
// new maps.
func (r Resources) keepOnly(names []string) Resources {
	items, digests := make(map[string]proto.Message, len(names)), make(map[string]digest, len(names))
	for name, m := range r.Items {
		if _, ok := slices.BinarySearch(names, name); ok {
			items[name] = m
			if sum, ok := r.digests[name]; ok {
				digests[name] = sum
			}
		}
	}
	r.Items, r.digests = items, digests
	return r
}

// clone returns r with copies of its maps, which may then be changed.
func (r Resources) clone() Resources {
	r.Items, r.digests = cloneMap(r.Items), cloneMap(r.digests)
	return r
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	maps.Copy(out, m)
	return out
}

// add puts got's resources into r, replacing those of the same name. r's
// maps must be its own (see clone).
func (r *Resources) add(got Resources) {
	maps.Copy(r.Items, got.Items)
	maps.Copy(r.digests, got.digests)
}

// remove deletes the named resources from r, whose maps must be its own.
func (r *Resources) remove(names []string) {
	for _, name := range names {
		delete(r.Items, name)
		delete(r.digests, name)
	}
}

// merge builds the candidate resources of one type from a response's
// decoded resources got. Listener and Cluster responses carry the whole
// state of the world; route and endpoint responses update the named
// resources and keep the others still subscribed.
func merge(t *resourceType, prev, got Resources, version string, subscribed []string) Resources {
	next := got
	if !t.fullState {
		next = prev.keepOnly(subscribed)
		next.add(got.keepOnly(subscribed))
	}
	next.Version, next.Received = version, true
	return next
}
