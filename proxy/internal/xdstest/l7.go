package xdstest

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Route is a route matching match with action a.
func Route(match *routev3.RouteMatch, a *routev3.RouteAction) *routev3.Route {
	return &routev3.Route{Match: match, Action: &routev3.Route_Route{Route: a}}
}

// Prefix matches a path prefix.
func Prefix(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}}
}

// ToCluster is a route action to one cluster.
func ToCluster(name string) *routev3.RouteAction {
	return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}
}

// Split is a route action over weighted clusters, given as name, weight
// pairs.
func Split(pairs ...any) *routev3.RouteAction {
	wc := &routev3.WeightedCluster{}
	for i := 0; i < len(pairs); i += 2 {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
			Name: pairs[i].(string), Weight: wrapperspb.UInt32(uint32(pairs[i+1].(int))),
		})
	}
	return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}}
}

// HeaderExact matches a header's exact value.
func HeaderExact(name, value string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value}},
	}}
}

// Routes is a route configuration with one virtual host for every domain.
func Routes(name string, routes ...*routev3.Route) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{Name: name, Domains: []string{"*"}, Routes: routes}}}
}

// WithLB sets a cluster's load-balancing policy.
func WithLB(c *clusterv3.Cluster, p clusterv3.Cluster_LbPolicy) *clusterv3.Cluster {
	c.LbPolicy = p
	return c
}

// Thresholds are DEFAULT-priority circuit breaker thresholds; zero
// fields are left unset.
type Thresholds struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries uint32
}

// WithCircuitBreakers sets a cluster's DEFAULT thresholds.
func WithCircuitBreakers(c *clusterv3.Cluster, t Thresholds) *clusterv3.Cluster {
	th := &clusterv3.CircuitBreakers_Thresholds{}
	set := func(dst **wrapperspb.UInt32Value, v uint32) {
		if v > 0 {
			*dst = wrapperspb.UInt32(v)
		}
	}
	set(&th.MaxConnections, t.MaxConnections)
	set(&th.MaxPendingRequests, t.MaxPendingRequests)
	set(&th.MaxRequests, t.MaxRequests)
	set(&th.MaxRetries, t.MaxRetries)
	c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
	return c
}

// WithOutlierDetection ejects hosts after consecutive5xx failures for
// base, up to maxPercent of the cluster.
func WithOutlierDetection(c *clusterv3.Cluster, consecutive5xx, maxPercent uint32, base time.Duration) *clusterv3.Cluster {
	c.OutlierDetection = &clusterv3.OutlierDetection{
		Consecutive_5Xx:    wrapperspb.UInt32(consecutive5xx),
		MaxEjectionPercent: wrapperspb.UInt32(maxPercent),
		BaseEjectionTime:   durationpb.New(base),
	}
	return c
}

// PriorityLoadAssignment is a load assignment with one locality per
// priority; each endpoint is "ip:port" with a health status.
func PriorityLoadAssignment(name string, byPriority ...[]*endpointv3.LbEndpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for p, eps := range byPriority {
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{Priority: uint32(p), LbEndpoints: eps})
	}
	return cla
}

// Unhealthy is an UNHEALTHY endpoint.
func Unhealthy(addr string) *endpointv3.LbEndpoint {
	return WeightedEndpoint(addr, corev3.HealthStatus_UNHEALTHY, 1)
}
