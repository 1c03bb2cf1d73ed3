package router

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/route"
)

const wait = 10 * time.Second

// env is a router over real clusters, served by a real HTTP server.
type env struct {
	t        testing.TB
	clusters *cluster.Manager
	router   *Router
	table    atomic.Pointer[route.Table]
	addr     string
	retries  atomic.Int32

	mu        sync.Mutex
	retriedIn []string // the cluster of each retry, as the Retry hook hears it
}

// retriedClusters returns the clusters the Retry hook was told so far.
func (e *env) retriedClusters() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.retriedIn)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, clusters: cluster.NewManager(cluster.Options{})}
	t.Cleanup(e.clusters.Close)
	retried := func(cluster string) {
		e.retries.Add(1)
		e.mu.Lock()
		e.retriedIn = append(e.retriedIn, cluster)
		e.mu.Unlock()
	}
	e.router = New(e.clusters, Hooks{Retry: retried}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := e.table.Load().Match(r, r.URL.EscapedPath())
		if rt == nil {
			http.Error(w, "no route", 404)
			return
		}
		e.router.Serve(w, r, Request{Route: rt, SourceIP: strings.Split(r.RemoteAddr, ":")[0]})
	}))
	srv.EnableHTTP2 = true
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	e.addr = srv.Listener.Addr().String()
	return e
}

// routes installs one virtual host with routes.
func (e *env) routes(routes ...route.Route) {
	e.t.Helper()
	tbl, err := route.NewTable("t", []route.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: routes}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.table.Store(tbl)
}

// cluster installs clusters.
func (e *env) setClusters(cs ...*config.Cluster) {
	m := map[string]*config.Cluster{}
	for _, c := range cs {
		m[c.Name] = c
	}
	e.clusters.Update(m)
}

func staticCluster(name string, addrs ...string) *config.Cluster {
	c := &config.Cluster{Name: name, ConnectTimeout: time.Second, Limits: config.DefaultLimits()}
	for _, a := range addrs {
		c.Endpoints = append(c.Endpoints, config.Endpoint{Address: a, Healthy: true, Weight: 1})
	}
	return c
}

// to is a catch-all route to cluster with every default.
func to(cluster string, mod ...func(*route.Route)) route.Route {
	r := route.Route{
		Match:  route.Match{Path: route.PathMatch{Kind: route.Prefix, Value: "/"}},
		Action: route.Action{Clusters: []route.WeightedCluster{{Name: cluster, Weight: 1}}, Timeout: route.DefaultTimeout, BufferLimit: route.DefaultBufferLimit},
	}
	for _, m := range mod {
		m(&r)
	}
	return r
}

// backend serves h and returns its address.
func backend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// named answers 200 with its name.
func named(t *testing.T, name string) string {
	return backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
}

// status answers every request with code, counting them.
func status(t *testing.T, code int, n *atomic.Int32) string {
	return backend(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(code)
		io.WriteString(w, "from backend")
	})
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	client := &http.Client{Timeout: wait}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(path string, headers ...string) response {
	e.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.addr+path, nil)
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(req)
}
