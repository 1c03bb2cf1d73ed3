package xdstest

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
)

// Scale sizes a synthetic sidecar configuration for benchmarks.
type Scale struct {
	// Clusters are EDS clusters, each with EndpointsPerCluster endpoints.
	Clusters, EndpointsPerCluster int
	// Listeners are HTTP listeners on 127.0.0.1:0, each with an RDS route
	// configuration of RegexRoutesPerListener safe_regex routes.
	Listeners, RegexRoutesPerListener int
}

// Sidecar is the resources of a Scale.
type Sidecar struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Loads     []*endpointv3.ClusterLoadAssignment
}

// ScaledSidecar builds the resources of s. Cluster i is "svc-i", its load
// assignment has endpoints 10.x.y.z:8080, all HEALTHY; route r of listener
// l matches the regex "/svc-N/items/[0-9]+(/.*)?" for the Nth route
// overall and sends it to cluster N mod Clusters.
func ScaledSidecar(s Scale) Sidecar {
	var out Sidecar
	for i := range s.Clusters {
		name := fmt.Sprintf("svc-%d", i)
		out.Clusters = append(out.Clusters, EDSCluster(name))
		var eps []*endpointv3.LbEndpoint
		for j := range s.EndpointsPerCluster {
			eps = append(eps, Endpoint(fmt.Sprintf("10.%d.%d.%d:8080", i/256, i%256, j+1)))
		}
		out.Loads = append(out.Loads, LoadAssignment(name, eps...))
	}
	n := 0
	for l := range s.Listeners {
		name := fmt.Sprintf("routes-%d", l)
		vh := &routev3.VirtualHost{Name: name, Domains: []string{"*"}}
		for range s.RegexRoutesPerListener {
			vh.Routes = append(vh.Routes, regexRoute(fmt.Sprintf("/svc-%d/items/[0-9]+(/.*)?", n), fmt.Sprintf("svc-%d", n%max(s.Clusters, 1))))
			n++
		}
		out.Routes = append(out.Routes, &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{vh}})
		out.Listeners = append(out.Listeners, HTTPListenerRDS(fmt.Sprintf("listener-%d", l), "127.0.0.1:0", name))
	}
	return out
}

func regexRoute(regex, cluster string) *routev3.Route {
	return &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: regex}}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
		}},
	}
}

// FlipHealth returns a copy of cla in which the health of endpoint i of
// the first locality toggles between HEALTHY and UNHEALTHY.
func FlipHealth(cla *endpointv3.ClusterLoadAssignment, i int) *endpointv3.ClusterLoadAssignment {
	out := proto.Clone(cla).(*endpointv3.ClusterLoadAssignment)
	e := out.GetEndpoints()[0].GetLbEndpoints()[i]
	if e.GetHealthStatus() == corev3.HealthStatus_UNHEALTHY {
		e.HealthStatus = corev3.HealthStatus_HEALTHY
	} else {
		e.HealthStatus = corev3.HealthStatus_UNHEALTHY
	}
	return out
}
