package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// mesh is a running Weft mesh: Consul, the control plane, and
//
//	web-1 ──(api: http, bind apiPort; echo: tcp, bind echoPort)──▶ api-1, api-2, echo-1
//
// each behind its own weft-proxy. The test process itself plays web-1's
// application and calls the upstream bind ports.
type mesh struct {
	consul       *consultest.Server
	controlPlane *testproc.Process
	xdsAddr      string
	cpAdmin      string
	proxies      map[string]*testproc.Process // by proxy ID
	proxyAdmin   map[string]string            // by proxy ID
	proxyState   map[string]string            // each sidecar's --state-dir, by proxy ID
	apiPort      int                          // web's upstream listener for api
	echoPort     int                          // web's upstream listener for echo
	publicPort   map[string]int               // each instance's sidecar public port, by instance ID
	hits         map[string]*atomic.Int64
	opts         meshOptions
	caDir        string // the control plane's CA directory
	// regs and entries are what the mesh wrote to Consul, to replay
	// into a Consul that restarted empty (replayConsul).
	regs    map[string]*api.AgentServiceRegistration // by instance ID
	entries []api.ConfigEntry
}

// meshOptions vary the control plane of a mesh.
type meshOptions struct {
	defaultPolicy string // --default-intention-policy
	leafTTL       string // --leaf-ttl
	otlpEndpoint  string // --otlp-endpoint
	xdsHost       string // where the control plane serves xDS; default 127.0.0.1
	xdsProtocol   string // the sidecars' --xds-protocol; default theirs (delta)
	caProvider    string // --ca-provider; default the control plane's (weft)
	resyncGrace   string // --consul-resync-grace; default the control plane's
	// traceSampling is --trace-sampling, in percent; default 100, so
	// that the tracing tests find the trace of the requests they make.
	traceSampling string
	// consul are the options of the mesh's Consul agent.
	consul []consultest.Option
}

// newMesh starts Consul and the control plane, with no services yet.
func newMesh(t *testing.T, opts ...meshOptions) *mesh {
	t.Helper()
	var o meshOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	m := bareMesh(t, o)
	m.startControlPlane(t)
	return m
}

// bareMesh starts Consul only: tests that run their own control planes
// start them.
func bareMesh(t testing.TB, opts meshOptions) *mesh {
	t.Helper()
	return &mesh{
		consul:     consultest.Start(t, opts.consul...),
		proxies:    map[string]*testproc.Process{},
		proxyAdmin: map[string]string{},
		proxyState: map[string]string{},
		apiPort:    freePort(t),
		echoPort:   freePort(t),
		publicPort: map[string]int{},
		hits:       map[string]*atomic.Int64{},
		opts:       opts,
		regs:       map[string]*api.AgentServiceRegistration{},
	}
}

// setEntry writes a config entry to Consul.
func (m *mesh) setEntry(t testing.TB, entry api.ConfigEntry) {
	t.Helper()
	if _, _, err := m.consul.Client().ConfigEntries().Set(entry, nil); err != nil {
		t.Fatalf("write %s %s: %v", entry.GetKind(), entry.GetName(), err)
	}
	m.entries = append(m.entries, entry)
}

// startMesh runs the standard topology: web → api ×2 (http) and echo (tcp).
func startMesh(t *testing.T, opts ...meshOptions) *mesh {
	t.Helper()
	m := newMesh(t, opts...)
	client := m.consul.Client()
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})

	for _, id := range []string{"api-1", "api-2"} {
		m.hits[id] = &atomic.Int64{}
		m.register(t, id, "api", startNameServer(t, id, m.hits[id]), nil)
	}
	m.hits["echo-1"] = &atomic.Int64{}
	m.register(t, "echo-1", "echo", startEchoServer(t, m.hits["echo-1"]), nil)
	m.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort},
		{DestinationName: "echo", LocalBindAddress: "127.0.0.1", LocalBindPort: m.echoPort},
	})
	for _, id := range []string{"api-1", "api-2", "echo-1", "web-1"} {
		m.startProxy(t, id+"-sidecar-proxy")
	}
	consultest.WaitForPassing(t, client, "api", 2)
	consultest.WaitForPassing(t, client, "echo", 1)
	return m
}

func (m *mesh) startControlPlane(t *testing.T) {
	m.launchControlPlane(t)
	waitHTTP200(t, "http://"+m.cpAdmin+"/ready", 30*time.Second)
}

// launchControlPlane starts the control plane without waiting for it to
// serve.
func (m *mesh) launchControlPlane(t testing.TB) {
	m.xdsAddr, m.cpAdmin, m.caDir = addr(freePort(t)), addr(freePort(t)), t.TempDir()
	if m.opts.xdsHost != "" {
		m.xdsAddr = net.JoinHostPort(m.opts.xdsHost, strconv.Itoa(freePort(t)))
	}
	m.controlPlane = startProcess(t, "control-plane", "weft", m.controlPlaneArgs()...)
}

// controlPlaneArgs is the control plane's command line from the mesh's
// addresses and options.
func (m *mesh) controlPlaneArgs() []string {
	sampling := m.opts.traceSampling
	if sampling == "" {
		sampling = "100"
	}
	args := []string{"control-plane", "--consul-addr", m.consul.HTTPAddr, "--xds-addr", m.xdsAddr,
		"--admin-addr", m.cpAdmin, "--ca-dir", m.caDir, "--log-level", "debug", "--trace-sampling", sampling}
	if m.opts.defaultPolicy != "" {
		args = append(args, "--default-intention-policy", m.opts.defaultPolicy)
	}
	if m.opts.leafTTL != "" {
		args = append(args, "--leaf-ttl", m.opts.leafTTL)
	}
	if m.opts.otlpEndpoint != "" {
		args = append(args, "--otlp-endpoint", m.opts.otlpEndpoint)
	}
	if m.opts.caProvider != "" {
		args = append(args, "--ca-provider", m.opts.caProvider)
	}
	if m.opts.resyncGrace != "" {
		args = append(args, "--consul-resync-grace", m.opts.resyncGrace)
	}
	return args
}

func (m *mesh) startProxy(t *testing.T, id string) {
	m.launchProxy(t, id)
	waitHTTP200(t, "http://"+m.proxyAdmin[id]+"/ready", 30*time.Second)
}

// launchProxy starts the sidecar of proxy ID id without waiting for it to
// be ready; its admin address is m.proxyAdmin[id].
func (m *mesh) launchProxy(t testing.TB, id string) {
	admin := addr(freePort(t))
	m.proxyAdmin[id] = admin
	m.proxyState[id] = filepath.Join(t.TempDir(), "state")
	args := []string{"--proxy-id", id, "--xds-addr", m.xdsAddr, "--admin-addr", admin, "--log-level", "debug",
		"--state-dir", m.proxyState[id]}
	if m.opts.xdsProtocol != "" {
		args = append(args, "--xds-protocol", m.opts.xdsProtocol)
	}
	m.proxies[id] = startProcess(t, id, "weft-proxy", args...)
}

// register registers a service instance with a TTL check (passing) and a
// sidecar, using the standard connect { sidecar_service { … } } stanza.
func (m *mesh) register(t testing.TB, id, name string, appPort int, upstreams []api.Upstream) {
	t.Helper()
	m.registerWithMeta(t, id, name, appPort, nil, upstreams)
}

// registerWithMeta registers like register, with service metadata, which
// the sidecar registration inherits (subsets filter on it).
func (m *mesh) registerWithMeta(t testing.TB, id, name string, appPort int, meta map[string]string, upstreams []api.Upstream) {
	t.Helper()
	// An instance registered again (after a Consul restart, say) keeps
	// its sidecar's public port, as a replayed registration would.
	if m.publicPort[id] == 0 {
		m.publicPort[id] = freePort(t)
	}
	reg := &api.AgentServiceRegistration{
		ID: id, Name: name, Port: appPort, Address: "127.0.0.1", Meta: meta,
		Check: &api.AgentServiceCheck{CheckID: ttlCheck(id), Name: id + " liveness", TTL: "30m", Status: api.HealthCritical},
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{
			Port:  m.publicPort[id],
			Proxy: &api.AgentServiceConnectProxyConfig{Upstreams: upstreams},
		}},
	}
	if err := m.consul.Client().Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	m.regs[id] = reg
	// The instance turns healthy only now that its registration has
	// returned. Consul 1.14 starts the sidecar's alias check before adding
	// it to the agent's state, so the alias's first evaluation can be lost;
	// with the TTL check already passing nothing would re-evaluate it for a
	// minute (CI once waited out 60 s for api-2 this way). A status change
	// after registration reaches the alias, but not always the first one,
	// and CI has seen the agent hold the alias passing while the catalog
	// kept the critical it was registered with (TestPeeringFailover's
	// api-dc1), so waitAlias repeats one until the catalog has it passing.
	m.setHealth(t, id, true)
	m.waitAlias(t, id, name+"-sidecar-proxy")
}

// waitAlias waits until the catalog has the alias check of instance id's
// sidecar (of service sidecar) passing, as the control plane and the
// tests' health waits read it. Each poll that finds it not passing moves
// the instance's TTL check to warning and back to passing: the agent
// re-evaluates an alias only when a check of the aliased service changes
// status (an update of the output alone is deferred and reaches no
// alias), and each status change of the alias is synced to the catalog.
func (m *mesh) waitAlias(t testing.TB, id, sidecar string) {
	t.Helper()
	client := m.consul.Client()
	poll.Until(t, 30*time.Second, "the alias check of "+id+"'s sidecar passing in the catalog", func() error {
		checks, _, err := client.Health().Checks(sidecar, nil)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if c.ServiceID != id+"-sidecar-proxy" || c.Type != "alias" {
				continue
			}
			if c.Status == api.HealthPassing {
				return nil
			}
			for _, status := range []string{api.HealthWarning, api.HealthPassing} {
				if err := client.Agent().UpdateTTL(ttlCheck(id), "set by test", status); err != nil {
					return err
				}
			}
			return fmt.Errorf("alias check %q is %s (%q)", c.CheckID, c.Status, c.Output)
		}
		return fmt.Errorf("no alias check of %s-sidecar-proxy among the catalog's %d checks of %s", id, len(checks), sidecar)
	})
}

// startHTTPInstances registers one instance of each service, <svc>-1,
// whose app answers with its name (counted in m.hits), with protocol http
// in service-defaults, and starts its sidecar.
func (m *mesh) startHTTPInstances(t *testing.T, services ...string) {
	t.Helper()
	for _, svc := range services {
		m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: svc, Protocol: "http"})
		m.hits[svc+"-1"] = &atomic.Int64{}
		m.register(t, svc+"-1", svc, startNameServer(t, svc+"-1", m.hits[svc+"-1"]), nil)
		m.startProxy(t, svc+"-1-sidecar-proxy")
	}
}

// setHealth passes or fails an instance's TTL check; Consul's alias check
// carries it to the instance's sidecar.
func (m *mesh) setHealth(t testing.TB, id string, passing bool) {
	t.Helper()
	status := api.HealthPassing
	if !passing {
		status = api.HealthCritical
	}
	if err := m.consul.Client().Agent().UpdateTTL(ttlCheck(id), "set by test", status); err != nil {
		t.Fatalf("update TTL of %s: %v", id, err)
	}
}

func ttlCheck(id string) string { return id + "-ttl" }

// startNameServer serves HTTP answering every request with the instance
// name, counting requests in hits.
func startNameServer(t testing.TB, name string, hits *atomic.Int64) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveName(t, l, name, hits)
}

// serveName serves HTTP on l, answering name and counting hits, until
// the test ends; it returns l's port.
func serveName(t testing.TB, l net.Listener, name string, hits *atomic.Int64) int {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprintln(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// startEchoServer serves raw TCP, echoing every byte back and half-closing
// when the client does; hits counts the bytes it received.
func startEchoServer(t *testing.T, hits *atomic.Int64) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(c, c)
				hits.Add(n)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}
