package main

import (
	"fmt"

	"github.com/hashicorp/consul/api"
)

// topology is the simulated mesh: services × instances sidecars, each
// service calling `upstreams` others, spread over `nodes` Consul nodes.
type topology struct {
	services, instances, upstreams, nodes int
}

// upstreamOffsets are the distances from a service to the services it
// calls: service i calls i+1, i+7, i+31, … (mod services).
var upstreamOffsets = []int{1, 7, 31, 101, 331}

func (t topology) validate() error {
	if t.services < 2*upstreamOffsets[len(upstreamOffsets)-1] {
		return fmt.Errorf("-services %d: want at least %d", t.services, 2*upstreamOffsets[len(upstreamOffsets)-1])
	}
	if t.instances < 1 || t.nodes < 1 {
		return fmt.Errorf("-instances %d, -nodes %d: want at least 1 each", t.instances, t.nodes)
	}
	if t.upstreams < 1 || t.upstreams > len(upstreamOffsets) {
		return fmt.Errorf("-upstreams %d: want 1 to %d", t.upstreams, len(upstreamOffsets))
	}
	return nil
}

func serviceName(i int) string             { return fmt.Sprintf("svc-%04d", i) }
func instanceID(i, j int) string           { return fmt.Sprintf("%s-%d", serviceName(i), j) }
func sidecarID(i, j int) string            { return instanceID(i, j) + "-sidecar-proxy" }
func healthCheckID(i, j int) string        { return sidecarID(i, j) + "-health" }
func (t topology) node(i, j int) int       { return (i*t.instances + j) % t.nodes }
func nodeName(n int) string                { return fmt.Sprintf("bench-node-%03d", n) }
func nodeAddress(n int) string             { return fmt.Sprintf("10.1.%d.%d", n/250, n%250+1) }
func (t topology) port(i, j int) int       { return 20000 + (i*t.instances+j)%40000 }
func (t topology) upstreamOf(i, k int) int { return (i + upstreamOffsets[k]) % t.services }

// proxyIDs are the node IDs of every sidecar, one simulated client each.
func (t topology) proxyIDs() []string {
	ids := make([]string, 0, t.services*t.instances)
	for i := range t.services {
		for j := range t.instances {
			ids = append(ids, sidecarID(i, j))
		}
	}
	return ids
}

// downstreams are the sidecars whose configuration names service s: the
// instances of every service that calls it.
func (t topology) downstreams(s int) []string {
	var ids []string
	for k := range t.upstreams {
		caller := ((s-upstreamOffsets[k])%t.services + t.services) % t.services
		for j := range t.instances {
			ids = append(ids, sidecarID(caller, j))
		}
	}
	return ids
}

// nodeOps registers the Consul nodes.
func (t topology) nodeOps() api.TxnOps {
	var ops api.TxnOps
	for n := range t.nodes {
		ops = append(ops, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet,
			Node: api.Node{Node: nodeName(n), Address: nodeAddress(n), Datacenter: "dc1"}}})
	}
	return ops
}

// instanceRegs registers instance j of service i: the application, then
// its sidecar with the service's upstreams and the sidecar's health check.
// They go through /v1/catalog/register: Consul's transaction API drops a
// sidecar's upstreams.
func (t topology) instanceRegs(i, j int, status string) []*api.CatalogRegistration {
	n := t.node(i, j)
	var ups []api.Upstream
	for k := range t.upstreams {
		ups = append(ups, api.Upstream{DestinationName: serviceName(t.upstreamOf(i, k)),
			LocalBindAddress: "127.0.0.1", LocalBindPort: 9000 + k})
	}
	return []*api.CatalogRegistration{
		{Node: nodeName(n), Address: nodeAddress(n), SkipNodeUpdate: true,
			Service: &api.AgentService{ID: instanceID(i, j), Service: serviceName(i), Port: 8080}},
		{Node: nodeName(n), Address: nodeAddress(n), SkipNodeUpdate: true,
			Service: &api.AgentService{
				Kind: api.ServiceKindConnectProxy, ID: sidecarID(i, j), Service: serviceName(i) + "-sidecar-proxy",
				Port: t.port(i, j),
				Proxy: &api.AgentServiceConnectProxyConfig{DestinationServiceName: serviceName(i), DestinationServiceID: instanceID(i, j),
					LocalServiceAddress: "127.0.0.1", LocalServicePort: 8080, Upstreams: ups},
			},
			Check: &api.AgentCheck{Node: nodeName(n), CheckID: healthCheckID(i, j), Name: "sidecar health",
				Status: status, ServiceID: sidecarID(i, j)},
		},
	}
}

func (t topology) checkOp(i, j int, status string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: nodeName(t.node(i, j)), CheckID: healthCheckID(i, j), Name: "sidecar health",
		Status: status, ServiceID: sidecarID(i, j)}}}
}

// deregisterOps removes instance j of service i (its check goes with it).
func (t topology) deregisterOps(i, j int) api.TxnOps {
	node := nodeName(t.node(i, j))
	return api.TxnOps{
		{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: node,
			Service: api.AgentService{ID: sidecarID(i, j), Service: serviceName(i) + "-sidecar-proxy"}}},
		{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: node,
			Service: api.AgentService{ID: instanceID(i, j), Service: serviceName(i)}}},
	}
}
