package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/internal/freeport"
)

// env is what every peer shares: the work directory, the binaries, the
// backends and the Consul agent.
type env struct {
	dir string
	bin binaries
	// backends are the addresses of the backends, by kind.
	backends map[backend]string
	consul   *api.Client
	// consulAddr is the agent's HTTP address.
	consulAddr string
	certs      haproxyCerts
	// proxyEnv is extra environment of the Weft sidecars (KEY=VALUE).
	proxyEnv []string
	// profiles, when its dir is set, profiles the Weft sidecars during
	// saturation runs (-profile).
	profiles *profiles
	// started are every process started, to stop in reverse at the end.
	started []*procs.Proc
}

type binaries struct{ consul, weft, proxy, nginx, haproxy, fortio string }

// backend is what a workload's traffic ends at.
type backend int

const (
	httpBackend backend = iota // nginx, a 1 KiB response
	grpcBackend                // fortio's gRPC ping service
	tcpBackend                 // fortio's TCP echo
)

func (b backend) String() string { return [...]string{"http", "grpc", "tcp"}[b] }

// port returns a free port on 127.0.0.1 below the ephemeral range, so
// that the load's own connections cannot take it before its process
// binds it.
func port() int {
	p, err := freeport.Take()
	if err != nil {
		panic(err)
	}
	return p
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// start starts a process, logged in the work directory and stopped at
// the end of the run.
func (e *env) start(name string, extraEnv []string, args ...string) (*procs.Proc, error) {
	p, err := procs.Start(procs.Spec{Dir: e.dir, Name: name, Env: extraEnv, Args: args})
	if err != nil {
		return nil, err
	}
	e.started = append(e.started, p)
	return p, nil
}

// stopAll stops every process started, the last first.
func (e *env) stopAll() {
	for i := len(e.started) - 1; i >= 0; i-- {
		e.started[i].Stop()
	}
	e.started = nil
}

// startBackends starts nginx (HTTP, a 1 KiB response) and fortio's server
// (gRPC ping service and TCP echo), those the workloads need.
func (e *env) startBackends(need map[backend]bool) error {
	e.backends = map[backend]string{}
	if need[httpBackend] {
		addr, err := e.startNginx()
		if err != nil {
			return err
		}
		e.backends[httpBackend] = addr
	}
	if need[grpcBackend] || need[tcpBackend] {
		grpcAddr, tcpAddr := loopback(port()), loopback(port())
		if _, err := e.start("fortio-server", nil, e.bin.fortio, "server", "-loglevel", "Warning",
			"-http-port", "disabled", "-redirect-port", "disabled", "-udp-port", "disabled",
			"-grpc-port", grpcAddr, "-tcp-port", tcpAddr); err != nil {
			return err
		}
		e.backends[grpcBackend], e.backends[tcpBackend] = grpcAddr, tcpAddr
	}
	for b, addr := range e.backends {
		if err := waitServing(b, addr, 30*time.Second); err != nil {
			return fmt.Errorf("%s backend: %w", b, err)
		}
	}
	return nil
}

// responseBody is the HTTP backend's response: 1 KiB.
var responseBody = strings.Repeat("weft-bench-1KiB.", 64)

func (e *env) startNginx() (string, error) {
	addr := loopback(port())
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  keepalive_requests 1000000;
  server { listen %[2]s; location / { return 200 "%[3]s"; } }
}
`, e.dir, addr, responseBody)
	path := filepath.Join(e.dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", err
	}
	_, err := e.start("nginx", nil, e.bin.nginx, "-c", path, "-e", filepath.Join(e.dir, "nginx-error.log"))
	return addr, err
}

// startConsul runs a Consul dev agent (Connect on, its built-in CA).
func (e *env) startConsul() error {
	e.consulAddr = loopback(port())
	_, err := e.start("consul", nil, e.bin.consul, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strings.TrimPrefix(e.consulAddr, "127.0.0.1:"), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(port()), "-serf-wan-port", strconv.Itoa(port()), "-server-port", strconv.Itoa(port()),
		"-hcl", "use_streaming_backend = false") // a Consul 1.14 panic: README, "Consul versions"
	if err != nil {
		return err
	}
	cfg := api.DefaultConfig()
	cfg.Address = e.consulAddr
	if e.consul, err = api.NewClient(cfg); err != nil {
		return err
	}
	if err := waitOK("http://"+e.consulAddr+"/v1/status/leader", 30*time.Second); err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	return nil
}

// startControlPlane runs `weft control-plane` with extra flags (none:
// its defaults) and returns it and its xDS address.
func (e *env) startControlPlane(name string, extra ...string) (*procs.Proc, string, error) {
	xds, admin := loopback(port()), loopback(port())
	args := append([]string{e.bin.weft, "control-plane", "--consul-addr", e.consulAddr,
		"--xds-addr", xds, "--admin-addr", admin, "--ca-dir", filepath.Join(e.dir, name+"-ca")}, extra...)
	cp, err := e.start(name, nil, args...)
	if err != nil {
		return nil, "", err
	}
	return cp, xds, waitOK("http://"+admin+"/ready", 30*time.Second)
}

// registration is a client service (web) calling a server service (api)
// through their sidecars, registered in Consul.
type registration struct {
	client, server string // service IDs; the sidecars' IDs add "-sidecar-proxy"
	upstream       int    // the client side's upstream port
}

// register registers, under a name prefix, a server service at backend
// with a sidecar and a client service with a sidecar whose upstream is
// the server, the server's protocol set to protocol.
func (e *env) register(prefix, protocol, backendAddr string) (registration, error) {
	server, client := "api-"+prefix, "web-"+prefix
	if _, _, err := e.consul.ConfigEntries().Set(&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: server, Protocol: protocol}, nil); err != nil {
		return registration{}, fmt.Errorf("service-defaults %s: %w", server, err)
	}
	backendPort, err := strconv.Atoi(backendAddr[strings.LastIndexByte(backendAddr, ':')+1:])
	if err != nil {
		return registration{}, err
	}
	if err := e.registerService(server, backendPort, nil); err != nil {
		return registration{}, err
	}
	reg := registration{client: client + "-1", server: server + "-1", upstream: port()}
	return reg, e.registerClient(client, server, reg.upstream)
}

// registerClient registers a client service with a sidecar whose upstream
// port calls server.
func (e *env) registerClient(client, server string, upstream int) error {
	return e.registerService(client, port(), []api.Upstream{{DestinationName: server, LocalBindAddress: "127.0.0.1", LocalBindPort: upstream}})
}

func (e *env) registerService(name string, appPort int, upstreams []api.Upstream) error {
	r := &api.AgentServiceRegistration{ID: name + "-1", Name: name, Port: appPort, Address: "127.0.0.1",
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{Port: port(),
			Proxy: &api.AgentServiceConnectProxyConfig{Upstreams: upstreams}}}}
	if err := e.consul.Agent().ServiceRegister(r); err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	return nil
}
