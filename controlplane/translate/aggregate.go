package translate

import (
	"cmp"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/catalog"
)

// Failover to a cluster peer, as Consul does it. A resolver's failover
// targets in this cluster share the primary's cluster, one priority each
// (endpoints.go), since they take the same TLS. A peer's service takes
// its own: the peer's SNI, roots and identity. So a target that fails
// over to a peer gets Envoy's aggregate cluster under its own name —
// routes and TCP proxies keep naming it — whose children are one EDS
// cluster per target in failover order, named as Consul names them
// (failover-target~<i>~<primary>). weft-proxy, Envoy and grpc-go share
// requests out across the children by their health, in order: the first
// takes all while enough of its instances are healthy.

// AggregateClusterType is the cluster_type of an aggregate cluster.
const AggregateClusterType = "envoy.clusters.aggregate"

// FailoverTargetName names the i-th child of the aggregate cluster
// primary: 0 is the primary target, then each failover target.
func FailoverTargetName(i int, primary string) string {
	return fmt.Sprintf("failover-target~%d~%s", i, primary)
}

// addFailoverAggregate adds r's aggregate cluster and its children to a
// proxy's resources, r being a resolution with a peer failover target.
func (t *translator) addFailoverAggregate(p *catalog.Proxy, upstream string, r *resolution, settings upstreamSettings, pr *proxyResources) {
	primary := r.target.clusterName()
	targets := append([]*resolution{r.withoutFailover()}, r.failover...)
	children := make([]string, len(targets))
	for i, tr := range targets {
		children[i] = FailoverTargetName(i, primary)
		var c *clusterv3.Cluster
		var cla *endpointv3.ClusterLoadAssignment
		if tr.target.peer != "" {
			c, cla = t.peerFailoverChild(p, upstream, tr.target, children[i], settings)
		} else {
			c, cla = t.localFailoverChild(p, upstream, tr, children[i], settings)
		}
		pr.addCluster(c, cla, upstream)
	}
	agg := aggregateCluster(primary, children)
	if err := agg.ValidateAll(); err != nil {
		panic(fmt.Sprintf("translate: aggregate cluster %q: %v", primary, err)) // built from names only
	}
	if conflict := pr.addCluster(agg, nil, upstream); conflict != "" {
		t.problem("proxy %q: cluster %q is reached through upstreams %q and %q with different settings; those of %q apply",
			p.ID, primary, conflict, upstream, conflict)
	}
}

// withoutFailover is r as a target of its own: the aggregate's first
// child.
func (r *resolution) withoutFailover() *resolution {
	if r.own == nil {
		own := *r
		own.failover = nil
		r.own = &own
	}
	return r.own
}

// localFailoverChild is the child cluster of a target in this mesh: the
// target's own cluster (its TLS, limits, load balancer) under the child's
// name, with the target's instances.
func (t *translator) localFailoverChild(p *catalog.Proxy, upstream string, r *resolution, name string, settings upstreamSettings) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	key := childKey{name, settings}
	cr, ok := t.children[key]
	if !ok {
		c, err := t.cluster(r, settings)
		c = proto.Clone(c).(*clusterv3.Cluster)
		c.Name = name
		cr = clusterResult{c, err}
		t.children[key] = cr
	}
	if cr.err != nil {
		t.problem("proxy %q: upstream %q: %v", p.ID, upstream, cr.err)
	}
	return cr.cluster, t.childLoadAssignment(r, name)
}

// childLoadAssignment is the load assignment of a local failover child,
// built once per Translate.
func (t *translator) childLoadAssignment(r *resolution, name string) *endpointv3.ClusterLoadAssignment {
	if l, ok := t.childLoads[name]; ok {
		t.replay(l.inputs)
		return l.cla
	}
	mark := len(t.inputs)
	cla := loadAssignment(name, priorityGroup{t.endpointsOf(r), r.subset.OnlyPassing})
	t.childLoads[name] = loadResult{cla, t.inputsSince(mark)}
	t.recipes[cla] = loadSource{func(t *translator) *endpointv3.ClusterLoadAssignment { return t.childLoadAssignment(r, name) }, t.childLoads[name].inputs}
	return cla
}

// peerFailoverChild is the child cluster of a peer's service: reached
// through mesh gateways as an upstream with DestinationPeer is
// (peering.go). Without an active peering that exports the service, or
// without what its TLS needs, the child has no instances, so the
// aggregate never picks it, and the reason is reported.
func (t *translator) peerFailoverChild(p *catalog.Proxy, upstream string, tg target, name string, settings upstreamSettings) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	c := edsCluster(name)
	c.ConnectTimeout = durationpb.New(cmp.Or(settings.connectTimeout, defaultConnectTimeout))
	c.CircuitBreakers = circuitBreakers(settings.limits, isHTTP(settings.protocol))
	c.OutlierDetection = outlierDetection(settings.outlier)
	c.TypedExtensionProtocolOptions = httpProtocolOptions(settings.protocol)
	c.CommonLbConfig = commonLbConfig(t.mesh.HealthyPanicThreshold)
	c.Metadata = tg.metadata()
	empty := loadAssignment(name)
	peer, imp := t.peer(tg.peer), t.imported(tg.peer, tg.service)
	switch {
	case peer == nil:
		t.problem("proxy %q: upstream %q: failover target %q: no ACTIVE peering named %q; it takes no traffic", p.ID, upstream, tg.clusterName(), tg.peer)
		return c, empty
	case imp == nil:
		t.problem("proxy %q: upstream %q: failover target %q: peer %q exports no service %q here (exported-services on the peer's side); it takes no traffic", p.ID, upstream, tg.clusterName(), tg.peer, tg.service)
		return c, empty
	}
	ts, err := t.peerUpstreamTLS(peer, imp, settings.protocol)
	if err != nil {
		t.problem("proxy %q: upstream %q: failover target %q: %v; it takes no traffic", p.ID, upstream, tg.clusterName(), err)
		return c, empty
	}
	c.TransportSocket = ts
	u := upstreamOf(p, upstream)
	u.DestinationName, u.Peer = tg.service, tg.peer
	return c, loadAssignment(name, priorityGroup{endpoints: t.peerEndpoints(p, u, imp)})
}

// childKey identifies a local failover child's cluster.
type childKey struct {
	name     string
	settings upstreamSettings
}

// upstreamOf is p's upstream of service, for its MeshGateway mode; a
// proxy reaching the service otherwise (transparently, as a gateway) has
// none, and the service's and proxy defaults decide.
func upstreamOf(p *catalog.Proxy, service string) catalog.Upstream {
	for _, u := range p.Upstreams {
		if u.DestinationName == service && u.Peer == "" {
			return u
		}
	}
	return catalog.Upstream{DestinationName: service}
}

// aggregateCluster is Envoy's aggregate cluster of children, in order.
func aggregateCluster(name string, children []string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(defaultConnectTimeout),
		LbPolicy:       clusterv3.Cluster_CLUSTER_PROVIDED,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name:        AggregateClusterType,
			TypedConfig: mustAny(&aggregatev3.ClusterConfig{Clusters: children}),
		}},
	}
}
