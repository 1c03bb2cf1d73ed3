// Package membership puts a service instance and its sidecar into Consul's
// catalog, through the local Consul agent, and takes them out again. It is
// the code behind `weft register` and `weft deregister` (VMs) and behind the
// membership sidecar of injected pods (`weft register --wait`, see Keeper).
//
// A registration is Consul's own service-mesh stanza: the service, and a
// connect { sidecar_service { … } } whose ID is SidecarID(service ID), the
// sidecar's proxy ID. Deregistering the service removes its sidecar too.
package membership

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Registration is one service instance and its sidecar. It is a plain
// value; Validate before use.
type Registration struct {
	Name    string // Consul service name (required)
	ID      string // service ID; default Name
	Address string // the instance's address; default the agent's node address
	Port    int    // the app's port; 0 for a client that takes no traffic
	// SidecarPort is the sidecar's public (mTLS) port; 0 lets Consul pick
	// one from its sidecar port range.
	SidecarPort int
	Upstreams   []Upstream
	// Protocol, when set, is the sidecar registration's proxy config
	// "protocol" (tcp, http, http2, grpc); else service-defaults decides.
	Protocol string
	Meta     map[string]string
	// Checks are run by the Consul agent against the app.
	Checks []Check
	// Transparent registers the sidecar in Consul's transparent proxy
	// mode, its outbound listener on OutboundPort (0: Consul's 15001).
	Transparent  bool
	OutboundPort int
	// Gateway, when set, registers a gateway of that kind (GatewayMesh)
	// instead of a service and its sidecar; weft-proxy runs it with the
	// registration's ID as its proxy ID. WANAddress is where peers and
	// other datacenters reach it (HOST:PORT; default its address).
	Gateway    string
	WANAddress string
}

// Check is one agent-run health check of the app: HTTP or TCP.
type Check struct {
	HTTP     string // URL answering 2xx when healthy
	TCP      string // HOST:PORT accepting connections when healthy
	Interval time.Duration
}

// SidecarID is the Consul service ID of a service's sidecar registration,
// and so its proxy ID (weft-proxy --proxy-id), as Consul names it.
func SidecarID(serviceID string) string { return serviceID + "-sidecar-proxy" }

// ServiceID returns the registration's service ID.
func (r Registration) ServiceID() string { return cmp.Or(r.ID, r.Name) }

// Validate reports every field that cannot be registered.
func (r Registration) Validate() error {
	var errs []error
	if r.Name == "" {
		errs = append(errs, errors.New("service name: empty"))
	}
	if r.Address != "" && net.ParseIP(r.Address) == nil && strings.ContainsAny(r.Address, " :/") {
		errs = append(errs, fmt.Errorf("address %q: want an IP or a host name", r.Address))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"port", r.Port}, {"sidecar port", r.SidecarPort}, {"outbound port", r.OutboundPort}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 0-65535", p.name, p.port))
		}
	}
	switch r.Protocol {
	case "", "tcp", "http", "http2", "grpc":
	default:
		errs = append(errs, fmt.Errorf("protocol %q: want tcp, http, http2 or grpc", r.Protocol))
	}
	for _, c := range r.Checks {
		if (c.HTTP == "") == (c.TCP == "") {
			errs = append(errs, errors.New("check: give exactly one of HTTP and TCP"))
		}
	}
	if r.Gateway != "" {
		errs = append(errs, r.validateGateway()...)
	}
	return errors.Join(errs...)
}

// agentService builds the agent registration: the service with its checks
// (plus extra, the TTL checks a Keeper owns) and its sidecar. The sidecar
// gets Consul's default checks (its public port listening, and an alias
// of the service's health).
func (r Registration) agentService(extra ...*api.AgentServiceCheck) *api.AgentServiceRegistration {
	if r.Gateway != "" {
		reg := r.agentGateway()
		reg.Checks = append(reg.Checks, extra...)
		return reg
	}
	sidecar := &api.AgentServiceRegistration{ // the agent names it SidecarID(ID)
		Address: r.Address,
		Port:    r.SidecarPort,
		Proxy:   &api.AgentServiceConnectProxyConfig{Upstreams: agentUpstreams(r.Upstreams)},
	}
	if r.Protocol != "" {
		sidecar.Proxy.Config = map[string]any{"protocol": r.Protocol}
	}
	if r.Transparent {
		sidecar.Proxy.Mode = api.ProxyModeTransparent
		if r.OutboundPort != 0 {
			sidecar.Proxy.TransparentProxy = &api.TransparentProxyConfig{OutboundListenerPort: r.OutboundPort}
		}
	}
	reg := &api.AgentServiceRegistration{
		ID:      r.ServiceID(),
		Name:    r.Name,
		Address: r.Address,
		Port:    r.Port,
		Meta:    maps.Clone(r.Meta),
		Connect: &api.AgentServiceConnect{SidecarService: sidecar},
	}
	for i, c := range r.Checks {
		reg.Checks = append(reg.Checks, agentCheck(reg.ID, i, c))
	}
	reg.Checks = append(reg.Checks, extra...)
	return reg
}

func agentCheck(serviceID string, i int, c Check) *api.AgentServiceCheck {
	check := &api.AgentServiceCheck{
		CheckID:  serviceID + ":check-" + strconv.Itoa(i+1),
		Interval: cmp.Or(c.Interval, 10*time.Second).String(),
		HTTP:     c.HTTP,
		TCP:      c.TCP,
	}
	if c.HTTP != "" {
		check.Name = "HTTP " + c.HTTP
	} else {
		check.Name = "TCP " + c.TCP
	}
	return check
}

func agentUpstreams(ups []Upstream) []api.Upstream {
	var out []api.Upstream
	for _, u := range ups {
		out = append(out, api.Upstream{DestinationName: u.Service, DestinationPeer: u.Peer, LocalBindAddress: "127.0.0.1", LocalBindPort: u.Port})
	}
	return out
}
