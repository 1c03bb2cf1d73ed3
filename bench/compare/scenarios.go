package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// env is what every scenario shares.
type env struct {
	dir     string
	bin     binaries
	backend int // nginx's port
	consul  *api.Client
	consulA string
	xdsAddr string
	// sampling is the control plane's --trace-sampling (percent).
	sampling float64
	// proxyEnv is extra environment of the Weft sidecars (KEY=VALUE).
	proxyEnv []string
}

type binaries struct{ consul, weft, proxy, nginx, haproxy, fortio string }

// setup starts a scenario's proxies and returns the URL to load, the
// processes whose RSS and CPU count as "the proxy", and what to stop.
type setup func(e *env) (url string, proxies []*procs.Proc, err error)

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startNginx(e *env) (*procs.Proc, error) {
	e.backend = freePort()
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  keepalive_requests 100000;
  server { listen 127.0.0.1:%[2]d; location / { return 200 "ok\n"; } }
}
`, e.dir, e.backend)
	path := filepath.Join(e.dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return procs.Start(procs.Spec{Dir: e.dir, Name: "nginx", Args: []string{e.bin.nginx, "-c", path, "-e", filepath.Join(e.dir, "nginx-error.log")}})
}

func direct(e *env) (string, []*procs.Proc, error) {
	return fmt.Sprintf("http://127.0.0.1:%d/", e.backend), nil, nil
}

// haproxyPair is two HAProxy hops with TLS between them, as a client-side
// and a server-side sidecar would be, in one process.
func haproxyPair(e *env) (string, []*procs.Proc, error) {
	ca, leaf, err := haproxyCerts(e.dir)
	if err != nil {
		return "", nil, err
	}
	front, mid := freePort(), freePort()
	conf := fmt.Sprintf(`global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend client_side
  bind 127.0.0.1:%d
  default_backend to_server_side
backend to_server_side
  http-reuse always
  server s1 127.0.0.1:%d ssl verify required ca-file %s crt %s alpn http/1.1
frontend server_side
  bind 127.0.0.1:%d ssl crt %s ca-file %s verify required alpn http/1.1
  default_backend app
backend app
  http-reuse always
  server app 127.0.0.1:%d
`, front, mid, ca, leaf, mid, leaf, ca, e.backend)
	path := filepath.Join(e.dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	p, err := procs.Start(procs.Spec{Dir: e.dir, Name: "haproxy", Args: []string{e.bin.haproxy, "-f", path}})
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("http://127.0.0.1:%d/", front), []*procs.Proc{p}, nil
}

// register registers web (with an upstream to api) and api (the nginx
// backend) with sidecars on fresh ports, suffixed to keep scenarios apart.
func register(e *env, suffix, protocol string) (upstreamPort int, err error) {
	upstreamPort = freePort()
	api2 := "api" + suffix
	if _, _, err := e.consul.ConfigEntries().Set(&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: api2, Protocol: protocol}, nil); err != nil {
		return 0, err
	}
	regs := []*api.AgentServiceRegistration{
		{ID: api2 + "-1", Name: api2, Port: e.backend, Address: "127.0.0.1",
			Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{Port: freePort()}}},
		{ID: "web" + suffix + "-1", Name: "web" + suffix, Port: freePort(), Address: "127.0.0.1",
			Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{Port: freePort(),
				Proxy: &api.AgentServiceConnectProxyConfig{Upstreams: []api.Upstream{{DestinationName: api2, LocalBindAddress: "127.0.0.1", LocalBindPort: upstreamPort}}}}}},
	}
	for _, r := range regs {
		if err := e.consul.Agent().ServiceRegister(r); err != nil {
			return 0, err
		}
	}
	return upstreamPort, nil
}

func weftPair(e *env) (string, []*procs.Proc, error) {
	port, err := register(e, "", "http")
	if err != nil {
		return "", nil, err
	}
	var ps []*procs.Proc
	for _, id := range []string{"web-1-sidecar-proxy", "api-1-sidecar-proxy"} {
		p, err := procs.Start(procs.Spec{Dir: e.dir, Name: id, Env: e.proxyEnv, Args: []string{e.bin.proxy, "--proxy-id", id, "--xds-addr", e.xdsAddr,
			"--admin-addr", "127.0.0.1:" + strconv.Itoa(freePort()), "--log-level", "info"}})
		if err != nil {
			return "", nil, err
		}
		ps = append(ps, p)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/", port), ps, nil
}

// consulPair is Consul's built-in proxy on both sides (L4, mTLS).
func consulPair(e *env) (string, []*procs.Proc, error) {
	port, err := register(e, "-c", "tcp")
	if err != nil {
		return "", nil, err
	}
	var ps []*procs.Proc
	for _, id := range []string{"web-c-1", "api-c-1"} {
		p, err := procs.Start(procs.Spec{Dir: e.dir, Name: "consul-proxy-" + id, Args: []string{e.bin.consul, "connect", "proxy", "-sidecar-for", id, "-http-addr", e.consulA, "-log-level", "warn"}})
		if err != nil {
			return "", nil, err
		}
		ps = append(ps, p)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/", port), ps, nil
}
