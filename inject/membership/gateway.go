package membership

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/consul/api"
)

// Gateway kinds `weft register --gateway` registers, as Consul's
// `consul connect envoy -gateway=… -register` does.
const (
	GatewayMesh        = "mesh"
	GatewayIngress     = "ingress"
	GatewayTerminating = "terminating"
	GatewayAPI         = "api"
)

// validateGateway reports what a gateway registration cannot have: the
// gateway is its own proxy, with no app, sidecar or upstreams.
func (r Registration) validateGateway() []error {
	var errs []error
	switch r.Gateway {
	case GatewayMesh:
		if r.Port == 0 {
			errs = append(errs, errors.New("gateway: needs --port, where it listens"))
		}
	case GatewayIngress, GatewayTerminating, GatewayAPI:
		if r.WANAddress != "" {
			errs = append(errs, fmt.Errorf("gateway: only a mesh gateway has a WAN address, not a %s gateway", r.Gateway))
		}
		if r.Gateway == GatewayTerminating && r.Port == 0 {
			errs = append(errs, errors.New("gateway: needs --port, where it listens"))
		}
	default:
		errs = append(errs, fmt.Errorf("gateway %q: want %q, %q, %q or %q", r.Gateway, GatewayMesh, GatewayIngress, GatewayTerminating, GatewayAPI))
	}
	if r.SidecarPort != 0 || len(r.Upstreams) > 0 || r.Transparent || r.Protocol != "" {
		errs = append(errs, errors.New("gateway: a gateway has no sidecar, upstreams, protocol or transparent mode"))
	}
	if r.WANAddress != "" {
		if _, port, err := net.SplitHostPort(r.WANAddress); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("wan address %q: want HOST:PORT", r.WANAddress))
		}
	}
	return errs
}

// agentGateway is a gateway's registration, as Consul's are: for a mesh
// gateway, kind mesh-gateway, its LAN address and its WAN address (which
// peers and other datacenters dial; default the LAN one), and a check that
// its port accepts connections; for an ingress gateway, kind
// ingress-gateway (its listeners come from its ingress-gateway entry); for
// an API gateway, kind api-gateway (its listeners come from its
// api-gateway entry, their routes from http-route and tcp-route entries);
// for a terminating gateway, kind terminating-gateway (the services it
// answers for come from its terminating-gateway entry).
func (r Registration) agentGateway() *api.AgentServiceRegistration {
	if kind, ok := map[string]api.ServiceKind{GatewayIngress: api.ServiceKindIngressGateway, GatewayTerminating: api.ServiceKindTerminatingGateway, GatewayAPI: api.ServiceKindAPIGateway}[r.Gateway]; ok {
		reg := &api.AgentServiceRegistration{Kind: kind, ID: r.ServiceID(), Name: r.Name,
			Address: r.Address, Port: r.Port, Meta: r.Meta}
		for i, c := range r.Checks {
			reg.Checks = append(reg.Checks, agentCheck(reg.ID, i, c))
		}
		return reg
	}
	lanHost := r.Address
	if lanHost == "" {
		lanHost = "127.0.0.1"
	}
	lan := api.ServiceAddress{Address: lanHost, Port: r.Port}
	wan := lan
	if r.WANAddress != "" {
		host, port, _ := net.SplitHostPort(r.WANAddress)
		p, _ := strconv.Atoi(port)
		wan = api.ServiceAddress{Address: host, Port: p}
	}
	reg := &api.AgentServiceRegistration{
		Kind: api.ServiceKindMeshGateway, ID: r.ServiceID(), Name: r.Name, Address: r.Address, Port: r.Port,
		Meta: r.Meta, TaggedAddresses: map[string]api.ServiceAddress{"lan": lan, "wan": wan},
	}
	for i, c := range r.Checks {
		reg.Checks = append(reg.Checks, agentCheck(reg.ID, i, c))
	}
	return reg
}
