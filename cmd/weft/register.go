package main

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/discovery"
	"github.com/weft-mesh/weft/inject/membership"
	"github.com/weft-mesh/weft/internal/logging"
)

type registerFlags struct {
	consulAddr, consulToken string
	reg                     membership.Registration
	upstreams, checkHTTP    string
	checkTCP                string
	checkInterval           time.Duration
	noCheck                 bool
	meta                    []string
	wait                    bool
	keeper                  membership.Keeper
	logLevel, logFormat     string
}

func newRegisterCommand() *cobra.Command {
	f := &registerFlags{}
	cmd := &cobra.Command{
		Use:   "register --name NAME [--id ID] [--address IP] [--port PORT] [--upstreams api:9191,db:5432]",
		Short: "Register a service instance and its sidecar with the local Consul agent",
		Long: `Register a service instance and its sidecar with the local Consul agent, as
Consul's service mesh does: the service, and a connect { sidecar_service }
whose ID, <id>-sidecar-proxy, is the proxy ID to give weft-proxy.

By default the agent checks the app with TCP on ADDRESS:PORT every 10s
(--check-http or --check-tcp to choose, --no-check for none); the sidecar
gets Consul's default checks (its public port listening, and the service's
health). Registering again replaces the registration.

With --gateway mesh it registers a mesh gateway instead, as
consul connect envoy -gateway=mesh -register does: kind mesh-gateway, its
--address:--port as LAN address and --wan-address (default the same) as
WAN address, which peers dial, and a TCP check of its port. Run weft-proxy
with --proxy-id set to its ID; it routes peers' mTLS by SNI to the
exported services' sidecars and holds no certificate.

With --gateway ingress it registers an ingress gateway (kind
ingress-gateway, no check: its listeners, and the services they route to,
come from the ingress-gateway config entry of the same --name).

With --gateway api it registers an API gateway (kind api-gateway, Consul
1.15 on, no check): its listeners come from the api-gateway config entry
of the same --name, their routes from http-route and tcp-route entries.

With --gateway terminating it registers a terminating gateway (kind
terminating-gateway, a TCP check of its port): the services outside the
mesh it answers for come from the terminating-gateway config entry of the
same --name. Sidecars calling a linked service dial the gateway, which
presents that service's certificate (obtained like a sidecar's, its key
kept in the gateway) and enforces the service's intentions. Its token
needs service:write on every linked service, as in Consul.

A service a peer exports is an upstream as in Consul's annotations:
--upstreams api.svc.dc2.peer:9191 calls api of peer dc2 on port 9191.

With --wait, weft stays running and keeps the registration: it owns a TTL
check that expires when weft stops without deregistering, after which the
agent removes the instance (--deregister-after); it checks the app itself
on --app-addr; it registers again if the agent loses the registration; and
it deregisters on SIGTERM. Injected Kubernetes pods run it this way.

The agent is $CONSUL_HTTP_ADDR (default 127.0.0.1:8500), with the token in
$CONSUL_HTTP_TOKEN or $CONSUL_HTTP_TOKEN_FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRegister(cmd, f) },
	}
	fl := cmd.Flags()
	addConsulFlags(cmd, &f.consulAddr, &f.consulToken)
	fl.StringVar(&f.reg.Name, "name", "", "service name (required)")
	fl.StringVar(&f.reg.ID, "id", "", "service ID, unique on the agent (default: the name); the sidecar's is <id>-sidecar-proxy")
	fl.StringVar(&f.reg.Address, "address", "", "the instance's address (default: the agent's node address)")
	fl.IntVar(&f.reg.Port, "port", 0, "the app's port; 0 for a client that takes no traffic")
	fl.IntVar(&f.reg.SidecarPort, "sidecar-port", 0, "the sidecar's public (mTLS) port (default: Consul picks one, from 21000)")
	fl.StringVar(&f.upstreams, "upstreams", "", `services the app calls and the local ports it calls them on: "api:9191,db:5432"`)
	fl.StringVar(&f.reg.Protocol, "protocol", "", "tcp, http, http2 or grpc (default: the service-defaults config entry's)")
	fl.StringArrayVar(&f.meta, "meta", nil, "service metadata KEY=VALUE (repeatable)")
	fl.StringVar(&f.checkHTTP, "check-http", "", "health check: URL that answers 2xx when the app is healthy")
	fl.StringVar(&f.checkTCP, "check-tcp", "", "health check: HOST:PORT that accepts connections when the app is healthy")
	fl.DurationVar(&f.checkInterval, "check-interval", 10*time.Second, "interval of the health check")
	fl.BoolVar(&f.noCheck, "no-check", false, "register no agent health check")
	fl.BoolVar(&f.reg.Transparent, "transparent", false, "register the sidecar in transparent proxy mode (pair with weft redirect)")
	fl.IntVar(&f.reg.OutboundPort, "outbound-port", 0, "with --transparent: the sidecar's outbound listener port (default 15001)")
	fl.StringVar(&f.reg.Gateway, "gateway", "", `register a gateway instead of a service and its sidecar: "mesh", "ingress", "terminating" or "api"`)
	fl.StringVar(&f.reg.WANAddress, "wan-address", "", "with --gateway: HOST:PORT where peers reach the gateway (default --address:--port)")
	fl.BoolVar(&f.wait, "wait", false, "stay running: keep the registration alive and deregister on SIGTERM")
	fl.StringVar(&f.keeper.AppAddr, "app-addr", "", "with --wait: HOST:PORT weft dials to check the app (default 127.0.0.1:PORT when --port is set)")
	fl.DurationVar(&f.keeper.DeregisterAfter, "deregister-after", time.Minute, "with --wait: how long after weft dies the agent removes the instance (minimum 1m)")
	fl.DurationVar(&f.keeper.Interval, "refresh-interval", 5*time.Second, "with --wait: how often the TTL checks are refreshed")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.MarkFlagRequired("name")
	return cmd
}

func runRegister(cmd *cobra.Command, f *registerFlags) error {
	if err := f.complete(); err != nil {
		return err
	}
	agent, err := consulAgent(f.consulAddr, f.consulToken)
	if err != nil {
		return err
	}
	if f.wait {
		logger, err := logging.New(os.Stderr, f.logLevel, f.logFormat)
		if err != nil {
			return err
		}
		f.keeper.Agent, f.keeper.Registration, f.keeper.Logger = agent, f.reg, logger
		return f.keeper.Run(cmd.Context())
	}
	if err := membership.Register(cmd.Context(), agent, f.reg); err != nil {
		return err
	}
	if f.reg.Gateway != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "registered %s gateway %s (service %s); run weft-proxy --proxy-id %s\n",
			f.reg.Gateway, f.reg.ServiceID(), f.reg.Name, f.reg.ServiceID())
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "registered %s (service %s) and its sidecar %s\n",
		f.reg.ServiceID(), f.reg.Name, membership.SidecarID(f.reg.ServiceID()))
	return nil
}

// complete turns the flags into the registration and its checks.
func (f *registerFlags) complete() error {
	var err error
	if f.reg.Upstreams, err = membership.ParseUpstreams(f.upstreams); err != nil {
		return fmt.Errorf("--upstreams: %w", err)
	}
	for _, kv := range f.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--meta %q: want KEY=VALUE", kv)
		}
		if f.reg.Meta == nil {
			f.reg.Meta = map[string]string{}
		}
		f.reg.Meta[k] = v
	}
	switch {
	case f.checkHTTP != "":
		f.reg.Checks = append(f.reg.Checks, membership.Check{HTTP: f.checkHTTP, Interval: f.checkInterval})
	case f.checkTCP != "":
		f.reg.Checks = append(f.reg.Checks, membership.Check{TCP: f.checkTCP, Interval: f.checkInterval})
	case !f.noCheck && !f.wait && f.reg.Port > 0 && f.reg.Gateway != membership.GatewayIngress && f.reg.Gateway != membership.GatewayAPI:
		host := cmp.Or(f.reg.Address, "127.0.0.1")
		f.reg.Checks = append(f.reg.Checks, membership.Check{TCP: net.JoinHostPort(host, strconv.Itoa(f.reg.Port)), Interval: f.checkInterval})
	}
	if f.wait && f.keeper.AppAddr == "" && f.reg.Port > 0 {
		f.keeper.AppAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(f.reg.Port))
	}
	if f.keeper.DeregisterAfter < time.Minute {
		return fmt.Errorf("--deregister-after %v: Consul's minimum is 1m", f.keeper.DeregisterAfter)
	}
	return f.reg.Validate()
}

func newDeregisterCommand() *cobra.Command {
	var consulAddr, consulToken string
	cmd := &cobra.Command{
		Use:   "deregister ID",
		Short: "Remove a service instance and its sidecar from the local Consul agent",
		Long: `Remove the service instance ID, registered with weft register, and its sidecar
(<ID>-sidecar-proxy) from the local Consul agent.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			agent, err := consulAgent(consulAddr, consulToken)
			if err != nil {
				return err
			}
			if err := membership.Deregister(cmd.Context(), agent, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deregistered %s and its sidecar %s\n", args[0], membership.SidecarID(args[0]))
			return nil
		},
	}
	addConsulFlags(cmd, &consulAddr, &consulToken)
	return cmd
}

func addConsulFlags(cmd *cobra.Command, addr, token *string) {
	cmd.Flags().StringVar(addr, "consul-addr", envOr("CONSUL_HTTP_ADDR", "127.0.0.1:8500"),
		"the local Consul agent's HTTP address, HOST:PORT or a URL (env CONSUL_HTTP_ADDR)")
	cmd.Flags().StringVar(token, "consul-token", "", "Consul ACL token (default: env CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE)")
}

func consulAgent(addr, token string) (*api.Agent, error) {
	client, err := discovery.NewConsulClient(discovery.ConsulConfig(addr, token))
	if err != nil {
		return nil, err
	}
	return client.Agent(), nil
}
