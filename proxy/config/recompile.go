package config

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/route"
	"github.com/weft-mesh/weft/proxy/xds"
)

// sources are the messages the resources of one Runtime were compiled
// from, keyed by message pointer: the xDS client keeps the message of a
// resource that did not change, so the same pointer means the same
// content.
type sources struct {
	routes    map[*routev3.RouteConfiguration]*route.Table
	loads     map[*endpointv3.ClusterLoadAssignment][]Endpoint
	clusters  map[*clusterv3.Cluster]builtCluster
	listeners map[*listenerv3.Listener]*Listener
	secrets   map[*tlsv3.Secret]compiledSecret
}

// builtCluster is a compiled cluster and the load assignment it embeds
// (nil for none).
type builtCluster struct {
	out  *Cluster
	load proto.Message
}

// newSources returns empty sources sized for s.
func newSources(s xds.State) *sources {
	return &sources{
		routes:    make(map[*routev3.RouteConfiguration]*route.Table, len(s.Routes.Items)),
		loads:     make(map[*endpointv3.ClusterLoadAssignment][]Endpoint, len(s.Endpoints.Items)),
		clusters:  make(map[*clusterv3.Cluster]builtCluster, len(s.Clusters.Items)),
		listeners: make(map[*listenerv3.Listener]*Listener, len(s.Listeners.Items)),
		secrets:   make(map[*tlsv3.Secret]compiledSecret, len(s.Secrets.Items)),
	}
}

// sourcesOrNone returns rt's sources; none for a nil Runtime or one built
// by hand.
func (rt *Runtime) sourcesOrNone() *sources {
	if rt == nil || rt.sources == nil {
		return &sources{}
	}
	return rt.sources
}

// memoized wraps compile: a message compiled before (a key of was) is not
// compiled again. Every result is recorded in next.
func memoized[M comparable, T any](was, next map[M]T, compile func(M) (T, error)) func(M) (T, error) {
	return func(m M) (T, error) {
		out, ok := was[m]
		if !ok {
			var err error
			if out, err = compile(m); err != nil {
				return out, err
			}
		}
		next[m] = out
		return out, nil
	}
}

// cluster compiles c with the compiled loads, or takes it from was when c
// and the load assignment it embeds are the messages it was compiled from.
func (next *sources) cluster(was *sources, c *clusterv3.Cluster, assignments xds.Resources, loads map[string][]Endpoint) (*Cluster, error) {
	if b, ok := was.clusters[c]; ok && b.load == loadOf(b.out, assignments) {
		next.clusters[c] = b
		return b.out, nil
	}
	out, err := compileCluster(c, loads)
	if err != nil {
		return nil, err
	}
	next.clusters[c] = builtCluster{out: out, load: loadOf(out, assignments)}
	return out, nil
}

// loadOf is the load assignment an EDS cluster embeds; nil for other
// clusters and while it has not arrived.
func loadOf(c *Cluster, assignments xds.Resources) proto.Message {
	if c.EDSName == "" {
		return nil
	}
	return assignments.Items[c.EDSName]
}

// listener compiles l with the compiled route tables and resolves its
// passthrough chains against clusters, or takes it from was when l is the
// message it was compiled from and its route tables and passthrough
// chains are still what tables and clusters give.
func (next *sources) listener(was *sources, l *listenerv3.Listener, tables map[string]*route.Table, clusters map[string]*Cluster) (*Listener, error) {
	out, ok := was.listeners[l]
	if !ok || !sameRouteTables(out, tables) || !originalDstResolved(out, clusters) {
		var err error
		if out, err = compileListener(l, tables); err != nil {
			return nil, err
		}
		resolveOriginalDst(out, clusters)
	}
	next.listeners[l] = out
	return out, nil
}

// sameRouteTables reports whether the RDS route tables of l and of its
// filter chains are those in tables.
func sameRouteTables(l *Listener, tables map[string]*route.Table) bool {
	if l.Transparent == nil {
		return sameRouteTable(l, tables)
	}
	for _, chain := range l.Transparent.Chains {
		if !sameRouteTable(chain, tables) {
			return false
		}
	}
	return true
}

func sameRouteTable(l *Listener, tables map[string]*route.Table) bool {
	return l.HTTP == nil || l.HTTP.RouteConfigName == "" || l.HTTP.Routes == tables[l.HTTP.RouteConfigName]
}
