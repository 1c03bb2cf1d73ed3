package listener

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/route"
)

const wait = 10 * time.Second

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// env is a listener Manager with its clusters.
type env struct {
	t        *testing.T
	clusters *cluster.Manager
	m        *Manager
}

func newEnv(t *testing.T, drain time.Duration, with ...func(*Options)) *env {
	t.Helper()
	clusters := cluster.NewManager(cluster.Options{})
	opts := Options{
		Clusters:     clusters,
		DrainTimeout: drain,
		Logger:       slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range with {
		f(&opts)
	}
	m := NewManager(opts)
	t.Cleanup(m.Close)
	return &env{t: t, clusters: clusters, m: m}
}

// apply installs rt as the proxy's applier does.
func (e *env) apply(rt *config.Runtime) error {
	plan, err := e.m.Prepare(rt)
	if err != nil {
		return err
	}
	e.clusters.Update(rt.Clusters)
	plan.Commit()
	return nil
}

func (e *env) mustApply(rt *config.Runtime) {
	e.t.Helper()
	if err := e.apply(rt); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
}

// addr returns the bound address of the named listener.
func (e *env) addr(name string) string {
	e.t.Helper()
	for _, l := range e.m.Listeners() {
		if l.Name == name {
			return l.BoundAddress
		}
	}
	e.t.Fatalf("listener %q not running; have %+v", name, e.m.Listeners())
	return ""
}

func runtime(clusters map[string]*config.Cluster, listeners ...*config.Listener) *config.Runtime {
	if clusters == nil {
		clusters = map[string]*config.Cluster{}
	}
	return &config.Runtime{Listeners: listeners, Clusters: clusters}
}

func tcpListener(name, addr, cluster string) *config.Listener {
	return &config.Listener{Name: name, Address: addr, Mode: config.ModeTCP, Cluster: cluster}
}

func httpListener(t *testing.T, name, addr string, routes ...route.Route) *config.Listener {
	t.Helper()
	tbl, err := route.NewTable("routes", []route.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: routes}})
	if err != nil {
		t.Fatal(err)
	}
	return &config.Listener{Name: name, Address: addr, Mode: config.ModeHTTP, HTTP: &config.HTTP{
		Routes: tbl, MaxRequestHeaderBytes: config.DefaultMaxRequestHeaderBytes, MaxRequestHeaders: config.DefaultMaxRequestHeaders,
	}}
}

func prefixRoute(prefix, cluster string) route.Route {
	return route.Route{
		Match:  route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: prefix}},
		Action: route.Action{Clusters: []route.WeightedCluster{{Name: cluster, Weight: 1}}, Timeout: route.DefaultTimeout, BufferLimit: route.DefaultBufferLimit},
	}
}

func staticCluster(name string, addrs ...string) *config.Cluster {
	c := &config.Cluster{Name: name, ConnectTimeout: time.Second}
	for _, a := range addrs {
		c.Endpoints = append(c.Endpoints, config.Endpoint{Address: a, Healthy: true, Weight: 1})
	}
	return c
}

// echoServer echoes every connection until the client half-closes, then
// closes. It returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// tagServer writes tag and closes each connection.
func tagServer(t *testing.T, tag string) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) { io.WriteString(c, tag) })
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads conn until EOF.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// openConnections counts the connections the named listener holds open,
// as its connection limit counts them.
func (e *env) openConnections(name string) int64 {
	e.t.Helper()
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	for _, b := range e.m.bound {
		if a := b.active.Load(); a != nil && a.Name == name {
			return b.handshaking.Load() + int64(b.registry.len())
		}
	}
	e.t.Fatalf("listener %q not bound", name)
	return 0
}
