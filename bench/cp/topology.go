package main

import (
	"fmt"

	"github.com/hashicorp/consul/api"
)

// topology is the simulated mesh: services × instances sidecars, each
// service calling `upstreams` others and the hot service, spread over
// `nodes` Consul nodes. The hot service (svc-hot, `instances` instances)
// is an upstream of every sidecar, as an auth or database service is in a
// real mesh; its own sidecars are registered but not simulated, so it
// adds no client.
type topology struct {
	services, instances, upstreams, nodes int
}

// upstreamOffsets are the distances from a service to the services it
// calls: service i calls i+1, i+7, i+31, … (mod services).
var upstreamOffsets = []int{1, 7, 31, 101, 331}

func (t topology) validate() error {
	if t.upstreams < 1 || t.upstreams > len(upstreamOffsets) {
		return fmt.Errorf("-upstreams %d: want 1 to %d", t.upstreams, len(upstreamOffsets))
	}
	// Twice the largest offset: no service calls itself or one service
	// twice, and the callers of a service are distinct.
	if least := 2 * upstreamOffsets[t.upstreams-1]; t.services < least {
		return fmt.Errorf("-services %d: want at least %d with -upstreams %d", t.services, least, t.upstreams)
	}
	if t.instances < 1 || t.nodes < 1 {
		return fmt.Errorf("-instances %d, -nodes %d: want at least 1 each", t.instances, t.nodes)
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

// The hot service: an upstream of every sidecar (the fan-out scenario).
const hotService = "svc-hot"

func hotInstanceID(j int) string     { return fmt.Sprintf("%s-%d", hotService, j) }
func hotSidecarID(j int) string      { return hotInstanceID(j) + "-sidecar-proxy" }
func hotCheckID(j int) string        { return hotSidecarID(j) + "-health" }
func (t topology) hotNode(j int) int { return j % t.nodes }
func hotPort(j int) int              { return 19000 + j }

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
// its sidecar with the service's upstreams (and the hot service) and the
// sidecar's health check. They go through /v1/catalog/register: Consul's
// transaction API drops a sidecar's upstreams. gen > 0 re-registers the
// instance on another port, as a rolling deploy's new instance would be.
func (t topology) instanceRegs(i, j int, status string, gen int) []*api.CatalogRegistration {
	ups := []api.Upstream{{DestinationName: hotService, LocalBindAddress: "127.0.0.1", LocalBindPort: 9000 + len(upstreamOffsets)}}
	for k := range t.upstreams {
		ups = append(ups, api.Upstream{DestinationName: serviceName(t.upstreamOf(i, k)),
			LocalBindAddress: "127.0.0.1", LocalBindPort: 9000 + k})
	}
	port := t.port(i, j) + gen%2*5000
	return sidecarRegs(t.node(i, j), serviceName(i), instanceID(i, j), port, ups, status)
}

// hotRegs registers instance j of the hot service and its sidecar, which
// has no upstreams.
func (t topology) hotRegs(j int, status string) []*api.CatalogRegistration {
	return sidecarRegs(t.hotNode(j), hotService, hotInstanceID(j), hotPort(j), nil, status)
}

// sidecarRegs registers one application instance on node n and its
// sidecar, with the sidecar's health check in the given status.
func sidecarRegs(n int, service, id string, port int, ups []api.Upstream, status string) []*api.CatalogRegistration {
	sidecar := id + "-sidecar-proxy"
	return []*api.CatalogRegistration{
		{Node: nodeName(n), Address: nodeAddress(n), SkipNodeUpdate: true,
			Service: &api.AgentService{ID: id, Service: service, Port: 8080}},
		{Node: nodeName(n), Address: nodeAddress(n), SkipNodeUpdate: true,
			Service: &api.AgentService{
				Kind: api.ServiceKindConnectProxy, ID: sidecar, Service: service + "-sidecar-proxy", Port: port,
				Proxy: &api.AgentServiceConnectProxyConfig{DestinationServiceName: service, DestinationServiceID: id,
					LocalServiceAddress: "127.0.0.1", LocalServicePort: 8080, Upstreams: ups},
			},
			Check: &api.AgentCheck{Node: nodeName(n), CheckID: sidecar + "-health", Name: "sidecar health",
				Status: status, ServiceID: sidecar},
		},
	}
}

func (t topology) checkOp(i, j int, status string) *api.TxnOp {
	return checkSet(t.node(i, j), healthCheckID(i, j), sidecarID(i, j), status)
}

// hotCheckOp sets the health of instance j of the hot service.
func (t topology) hotCheckOp(j int, status string) *api.TxnOp {
	return checkSet(t.hotNode(j), hotCheckID(j), hotSidecarID(j), status)
}

func checkSet(node int, checkID, serviceID, status string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: nodeName(node), CheckID: checkID, Name: "sidecar health", Status: status, ServiceID: serviceID}}}
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
