package proxy_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
)

const (
	webNode     = "web-1-sidecar-proxy"
	apiNode     = "api-1-sidecar-proxy"
	aclToken    = "s3cret-token"
	apiHTTP     = "api.default.dc1"
	apiTCP      = "apitcp.default.dc1"
	webToAPI    = "api:127.0.0.1:0"
	webToTCP    = "apitcp:127.0.0.1:0"
	publicHTTP  = "public_listener"
	publicTCP   = "public_tcp"
	otlpCluster = "weft-otlp"

	// leafTTL is the shortest leaf the CA signs.
	leafTTL = certs.MinLeafTTL
)

var trustDomain = spiffeid.RequireTrustDomainFromString("weft.local")

func serviceID(t testing.TB, svc string) string {
	t.Helper()
	id, err := certs.ServiceIdentity{TrustDomain: trustDomain, Namespace: "default", Datacenter: "dc1", Service: svc}.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// renewEvery returns a renewal fraction that renews a fresh leaf about d
// after it is issued (the fraction applies to the lifetime left).
func renewEvery(d time.Duration) func() float64 {
	f := float64(d) / float64(leafTTL)
	return func() float64 { return f }
}

// certService is the control plane's certificate service, signing with a
// CA the test can rotate.
type certService struct {
	certsv1.UnimplementedCertificateServiceServer
	ca     atomic.Pointer[certs.CA]
	signed atomic.Int32
	// dns are the DNS names a leaf may carry (an ingress gateway's), nil
	// for none.
	dns atomic.Pointer[[]string]
}

func (s *certService) Sign(ctx context.Context, req *certsv1.SignRequest) (*certsv1.SignResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get("x-consul-token"); len(got) != 1 || got[0] != aclToken {
		return nil, status.Error(codes.Unauthenticated, "ACL token not found")
	}
	svc, _, ok := strings.Cut(req.GetProxyId(), "-")
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no proxy %q", req.GetProxyId())
	}
	id, err := certs.ServiceIdentity{TrustDomain: trustDomain, Namespace: "default", Datacenter: "dc1", Service: svc}.ID()
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var dns []string
	if d := s.dns.Load(); d != nil {
		dns = *d
	}
	leaf, err := s.ca.Load().Sign(req.GetCsr(), id, leafTTL, time.Now(), dns...)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.signed.Add(1)
	return &certsv1.SignResponse{Certificate: leaf.Raw, SpiffeId: id.String()}, nil
}

func newCA(t testing.TB) *certs.CA {
	t.Helper()
	ca, err := certs.NewRootCA(trustDomain, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func bundle(cas ...*certs.CA) []byte {
	var roots []*x509.Certificate
	for _, ca := range cas {
		roots = append(roots, ca.Root())
	}
	return certs.EncodeCerts(roots...)
}

// meshTest is a control plane with a certificate service, the api
// sidecar (public HTTP and TCP listeners in front of two local apps) and
// the web sidecar (outbound listeners to api over mTLS).
type meshTest struct {
	t       *testing.T
	cp      *controlPlane
	certs   *certService
	web     *runningProxy
	api     *runningProxy
	app     *app
	echo    string
	relay   *relay
	version atomic.Int32
	// collector is the OTLP/gRPC address HTTP listeners trace to; "" for
	// no tracing.
	collector string

	mu      sync.Mutex
	roots   []byte
	allowed []string       // network RBAC of public_tcp: allowed principals
	l7Deny  *rbacv3.Policy // HTTP RBAC DENY policy of public_listener, if any
}

type meshOptions struct {
	renew func() float64
	// collector, when set, is an OTLP/gRPC address: every HTTP listener
	// traces (all new traces sampled) to it through cluster weft-otlp.
	collector string
	// accessLogs are the sidecars' access logs by node ID; nil: none.
	accessLogs map[string]*accesslog.Logger
}

func newMeshTest(t *testing.T, opts meshOptions) *meshTest {
	t.Helper()
	tl := newTestLog(t)
	m := &meshTest{t: t, certs: &certService{}, app: startApp(t), echo: echoServer(t), collector: opts.collector}
	ca := newCA(t)
	m.certs.ca.Store(ca)
	m.roots = bundle(ca)
	m.allowed = []string{serviceID(t, "web")}
	m.cp = startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, m.certs) })

	m.publishAPI()
	m.api = startProxyWith(t, proxy.Options{ProxyID: apiNode, XDSAddrs: []string{m.cp.addr}, Token: aclToken, LeafRenewFraction: opts.renew, Logger: tl.slog().With("proxy", "api"), AccessLog: opts.accessLogs[apiNode]})
	m.api.waitReady()
	m.relay = startRelay(t, m.api.listenerAddr(publicHTTP))

	m.publishWeb()
	m.web = startProxyWith(t, proxy.Options{ProxyID: webNode, XDSAddrs: []string{m.cp.addr}, Token: aclToken, LeafRenewFraction: opts.renew, Logger: tl.slog().With("proxy", "web"), AccessLog: opts.accessLogs[webNode]})
	m.web.waitReady()
	return m
}

// publish sends both sidecars a new snapshot.
func (m *meshTest) publish() {
	m.t.Helper()
	m.publishAPI()
	m.publishWeb()
}

func (m *meshTest) nextVersion() string { return fmt.Sprintf("v%d", m.version.Add(1)) }

func (m *meshTest) publishAPI() string {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var principals []*rbacv3.Principal
	for _, id := range m.allowed {
		principals = append(principals, xdstest.Principal(id))
	}
	tcp := xdstest.WithListenerTLS(xdstest.Listener(publicTCP, "127.0.0.1:0",
		xdstest.NetworkRBAC(xdstest.RBAC(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"allowed": xdstest.Policy(xdstest.AnyPermission(), principals...)})),
		xdstest.TCPProxy("local_tcp")), xdstest.DownstreamTLS(trustDomain.String()))
	filters := []*hcmv3.HttpFilter{xdstest.Router()}
	if m.l7Deny != nil {
		filters = append([]*hcmv3.HttpFilter{xdstest.HTTPRBAC(xdstest.RBAC(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{"l7-deny": m.l7Deny}))}, filters...)
	}
	http := xdstest.WithListenerTLS(xdstest.Listener(publicHTTP, "127.0.0.1:0", xdstest.HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: xdstest.RouteConfig("local_app", "local_app")},
		HttpFilters:    filters,
		Tracing:        m.tracing("api"),
	})), xdstest.DownstreamTLS(trustDomain.String(), "h2", "http/1.1"))
	v := m.nextVersion()
	m.cp.setFor(apiNode, v, map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {http, tcp},
		resourcev3.ClusterType: m.withCollector(
			xdstest.StaticCluster("local_app", xdstest.Endpoint(m.app.addr)),
			xdstest.StaticCluster("local_tcp", xdstest.Endpoint(m.echo)),
		),
		resourcev3.SecretType: {xdstest.RootsSecretOf(m.roots)},
	})
	return v
}

func (m *meshTest) publishWeb() string {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	apiID := serviceID(m.t, "api")
	// HTTP goes through the relay, which counts sidecar-to-sidecar
	// connections; TCP goes straight to the api sidecar.
	httpEndpoint, tcpEndpoint := m.relay.addr, m.api.listenerAddr(publicTCP)
	v := m.nextVersion()
	m.cp.setFor(webNode, v, map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {
			xdstest.WithHCM(xdstest.HTTPListenerRDS(webToAPI, "127.0.0.1:0", "api"), func(h *hcmv3.HttpConnectionManager) { h.Tracing = m.tracing("web") }),
			xdstest.TCPListener(webToTCP, "127.0.0.1:0", apiTCP),
		},
		resourcev3.RouteType: {xdstest.RouteConfig("api", apiHTTP)},
		resourcev3.ClusterType: m.withCollector(
			xdstest.WithHTTP2(xdstest.WithClusterTLS(xdstest.EDSCluster(apiHTTP), xdstest.UpstreamTLS(apiHTTP, apiID, "h2"))),
			xdstest.WithClusterTLS(xdstest.EDSCluster(apiTCP), xdstest.UpstreamTLS(apiTCP, apiID)),
		),
		resourcev3.EndpointType: {
			xdstest.LoadAssignment(apiHTTP, xdstest.WithInstanceID(xdstest.Endpoint(httpEndpoint), apiNode)),
			loadAssignment(apiTCP, []string{tcpEndpoint}),
		},
		resourcev3.SecretType: {xdstest.RootsSecretOf(m.roots)},
	})
	return v
}

// tracing is the HCM tracing config of service's listeners: nil without a
// collector.
func (m *meshTest) tracing(service string) *hcmv3.HttpConnectionManager_Tracing {
	if m.collector == "" {
		return nil
	}
	return xdstest.OpenTelemetryTracing(otlpCluster, service, 100)
}

// withCollector returns clusters and, with a collector, its cluster.
func (m *meshTest) withCollector(clusters ...types.Resource) []types.Resource {
	if m.collector != "" {
		clusters = append(clusters, xdstest.WithHTTP2(xdstest.StaticCluster(otlpCluster, xdstest.Endpoint(m.collector))))
	}
	return clusters
}

// setRoots publishes a new trust bundle to both sidecars and waits until
// both have accepted it.
func (m *meshTest) setRoots(cas ...*certs.CA) {
	m.t.Helper()
	m.mu.Lock()
	m.roots = bundle(cas...)
	m.mu.Unlock()
	apiV, webV := m.publishAPI(), m.publishWeb()
	for _, w := range []struct {
		p *runningProxy
		v string
	}{{m.api, apiV}, {m.web, webV}} {
		poll.UntilTrue(m.t, wait, "secret version "+w.v, func() bool {
			return w.p.xdsStatus().Types[resourcev3.SecretType].Version == w.v
		})
	}
}

// certs returns a sidecar's /certs.
func (p *runningProxy) certs() admin.Certs {
	p.t.Helper()
	_, body := p.adminGet("/certs")
	var c admin.Certs
	if err := json.Unmarshal(body, &c); err != nil {
		p.t.Fatalf("/certs: %v: %s", err, body)
	}
	return c
}

func (p *runningProxy) listeners() []listener.Info {
	p.t.Helper()
	_, body := p.adminGet("/listeners")
	var ls []listener.Info
	json.Unmarshal(body, &ls)
	return ls
}

// app is the api service's HTTP app: it answers with what it saw.
type app struct {
	addr   string
	mu     sync.Mutex
	paths  []string
	stream chan struct{} // closed to end /stream responses

	arrived  atomic.Int32
	together chan struct{} // closed when concurrentN /concurrent requests are in
}

// concurrentN /concurrent requests are answered only once all are in.
const concurrentN = 20

func startApp(t *testing.T) *app {
	t.Helper()
	a := &app{stream: make(chan struct{}), together: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.paths = append(a.paths, r.URL.RequestURI())
		a.mu.Unlock()
		switch r.URL.Path {
		case "/stream":
			a.serveStream(w)
			return
		case "/headers":
			// The trace context the app received, for propagation tests.
			fmt.Fprintf(w, "traceparent=%s b3=%s x-b3-traceid=%s", r.Header.Get("Traceparent"), r.Header.Get("B3"), r.Header.Get("X-B3-Traceid"))
			return
		case "/dump":
			// Every header the app received, for the mesh header tests.
			json.NewEncoder(w).Encode(r.Header)
			return
		case "/status/500":
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		case "/concurrent":
			if a.arrived.Add(1) == concurrentN {
				close(a.together)
			}
			select {
			case <-a.together:
			case <-time.After(wait):
			}
		}
		fmt.Fprintf(w, "path=%s xfcc=%s", r.URL.RequestURI(), r.Header.Get("X-Forwarded-Client-Cert"))
	}))
	t.Cleanup(srv.Close)
	a.addr = strings.TrimPrefix(srv.URL, "http://")
	return a
}

// serveStream writes a chunk every 20ms until the test ends the stream.
func (a *app) serveStream(w http.ResponseWriter) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	rc := http.NewResponseController(w)
	for {
		select {
		case <-a.stream:
			io.WriteString(w, "end\n")
			return
		case <-tick.C:
			io.WriteString(w, "tick\n")
			rc.Flush()
		}
	}
}

// relay forwards TCP connections to target and counts them: the TLS
// between the sidecars runs through it untouched.
type relay struct {
	addr  string
	conns atomic.Int32
}

func startRelay(t testing.TB, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &relay{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, up)
			}()
		}
	}()
	return r
}

// get fetches path through the web sidecar's outbound listener.
func (m *meshTest) get(client *http.Client, path string) (int, http.Header, string, error) {
	resp, err := client.Get("http://" + m.webAddr(webToAPI) + path)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

var listenerAddrs sync.Map // "<admin>/<name>" -> bound address

func (m *meshTest) webAddr(name string) string {
	key := m.web.admin + "/" + name
	if a, ok := listenerAddrs.Load(key); ok {
		return a.(string)
	}
	a := m.web.listenerAddr(name)
	listenerAddrs.Store(key, a)
	return a
}

// echoThroughMesh opens a new TCP connection through the web sidecar
// (so a new mTLS handshake between the sidecars) and echoes msg.
func (m *meshTest) echoThroughMesh(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echoed %q, want %q", got, msg)
	}
	return nil
}

// load runs requests in the background and counts failures.
type load struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	ok     atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	errs   []error
}

func startLoad(workers int, do func() error) *load {
	l := &load{stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := do(); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

// finish stops the load and fails the test on any failed request.
func (l *load) finish(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.failed.Load() > 0 || l.ok.Load() == 0 {
		t.Errorf("%s: %d ok, %d failed; first errors: %v", what, l.ok.Load(), l.failed.Load(), l.errs)
	} else {
		t.Logf("%s: %d requests, 0 failed", what, l.ok.Load())
	}
}

func (m *meshTest) httpLoad(client *http.Client) func() error {
	return func() error {
		code, _, body, err := m.get(client, "/public")
		if err != nil {
			return err
		}
		if code != 200 || !strings.HasPrefix(body, "path=/public") {
			return fmt.Errorf("GET /public: %d %q", code, body)
		}
		return nil
	}
}

func (m *meshTest) tcpLoad() func() error {
	addr := m.webAddr(webToTCP)
	return func() error { return m.echoThroughMesh(addr, "ping") }
}

func newClient() *http.Client {
	return &http.Client{Timeout: wait, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
}

// TestMTLSBetweenSidecars: two sidecars talk mutual TLS over TCP and HTTP,
// HTTP/2 between them; the app sees the caller's identity.
func TestMTLSBetweenSidecars(t *testing.T) {
	m := newMeshTest(t, meshOptions{})
	webID, apiID := serviceID(t, "web"), serviceID(t, "api")

	code, _, body, err := m.get(newClient(), "/hello")
	if want := "path=/hello xfcc=By=" + apiID + ";URI=" + webID; err != nil || code != 200 || body != want {
		t.Fatalf("GET /hello via the mesh = %d %q, %v; want 200 %q", code, body, err, want)
	}
	if err := m.echoThroughMesh(m.webAddr(webToTCP), "hello over mTLS"); err != nil {
		t.Fatalf("TCP via the mesh: %v", err)
	}

	t.Run("HTTP/2 between the sidecars", func(t *testing.T) {
		before := m.relay.conns.Load()
		var wg sync.WaitGroup
		errs := make(chan error, concurrentN)
		for range concurrentN {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// New downstream connections each, multiplexed upstream.
				client := &http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true}}
				if code, _, _, err := m.get(client, "/concurrent"); err != nil || code != 200 {
					errs <- fmt.Errorf("%d %v", code, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := m.relay.conns.Load() - before; n > 1 {
			t.Errorf("%d concurrent requests used %d new sidecar-to-sidecar connections, want them multiplexed on HTTP/2", concurrentN, n)
		}
	})

	t.Run("admin shows the certificates", func(t *testing.T) {
		for _, p := range []struct {
			proxy *runningProxy
			id    string
		}{{m.web, webID}, {m.api, apiID}} {
			c := p.proxy.certs()
			leaf := c.Identity.Leaf
			if leaf == nil || leaf.SPIFFEID != p.id || leaf.Serial == "" || leaf.SecondsToExpiry <= 0 || leaf.SecondsToExpiry > 60 {
				t.Errorf("%s leaf = %+v", p.id, leaf)
			}
			roots := c.TrustBundles["weft-roots"]
			if len(roots) != 1 || roots[0].SHA256 != mtls.Fingerprint(m.certs.ca.Load().Root()) {
				t.Errorf("%s roots = %+v", p.id, roots)
			}
		}
		for _, l := range m.api.listeners() {
			if !l.TLS {
				t.Errorf("api listener %s does not terminate TLS", l.Name)
			}
		}
	})

	t.Run("a plaintext client reaches nothing", func(t *testing.T) {
		c := dialWithDeadline(t, m.api.listenerAddr(publicHTTP))
		io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: api\r\n\r\n")
		got, _ := io.ReadAll(c)
		if strings.Contains(string(got), "path=") {
			t.Errorf("a plaintext client got an answer from the app: %q", got)
		}
	})
}

// TestLeafRenewalUnderLoad (RELIABILITY #6): leaves of the shortest TTL
// renewed every few hundred milliseconds under HTTP, TCP and a long-lived
// HTTP/2 stream: no request fails.
func TestLeafRenewalUnderLoad(t *testing.T) {
	m := newMeshTest(t, meshOptions{renew: renewEvery(300 * time.Millisecond)})
	firstWeb, firstAPI := m.web.certs().Identity.Leaf.Serial, m.api.certs().Identity.Leaf.Serial

	stream := m.openStream(t)
	httpLoad := startLoad(4, m.httpLoad(newClient()))
	tcpLoad := startLoad(2, m.tcpLoad())
	poll.UntilTrue(t, wait, "four renewals on each sidecar", func() bool {
		return m.web.certs().Identity.Renewals >= 4 && m.api.certs().Identity.Renewals >= 4
	})
	httpLoad.finish(t, "HTTP during renewals")
	tcpLoad.finish(t, "TCP (a handshake each) during renewals")
	close(m.app.stream)
	if err := stream.wait(); err != nil {
		t.Errorf("long-lived stream across renewals: %v", err)
	}
	if m.web.certs().Identity.Leaf.Serial == firstWeb || m.api.certs().Identity.Leaf.Serial == firstAPI {
		t.Error("leaves were not replaced")
	}
}

// stream is a long-lived streaming response through the mesh.
type stream struct{ done chan error }

func (m *meshTest) openStream(t *testing.T) *stream {
	t.Helper()
	s := &stream{done: make(chan error, 1)}
	resp, err := (&http.Client{}).Get("http://" + m.webAddr(webToAPI) + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "tick\n" {
		t.Fatalf("stream's first line %q, %v", line, err)
	}
	go func() {
		defer resp.Body.Close()
		for {
			line, err := br.ReadString('\n')
			switch {
			case line == "end\n":
				s.done <- nil
				return
			case err != nil:
				s.done <- fmt.Errorf("stream broke: %w", err)
				return
			}
		}
	}()
	return s
}

func (s *stream) wait() error {
	select {
	case err := <-s.done:
		return err
	case <-time.After(wait):
		return errors.New("stream did not end")
	}
}

// TestRootRotation (RELIABILITY #6): the bundle goes [old] → [old, new] →
// [new, old] → [new]; both leaves are re-issued from the new root as soon
// as it comes first, and no request fails.
func TestRootRotation(t *testing.T) {
	m := newMeshTest(t, meshOptions{})
	old, next := m.certs.ca.Load(), newCA(t)
	httpLoad := startLoad(4, m.httpLoad(newClient()))
	tcpLoad := startLoad(2, m.tcpLoad())
	issuedBy := func(p *runningProxy, ca *certs.CA) bool {
		leaf := p.certs().Identity.Leaf
		return leaf != nil && leaf.Issuer == ca.Root().Subject.String()
	}

	m.setRoots(old, next)
	if !issuedBy(m.web, old) || !issuedBy(m.api, old) {
		t.Error("a leaf was re-issued although its root is still first")
	}
	m.certs.ca.Store(next) // the control plane signs with the new root...
	m.setRoots(next, old)  // ...and puts it first: leaves are re-issued at once
	poll.UntilTrue(t, wait, "leaves from the new root", func() bool { return issuedBy(m.web, next) && issuedBy(m.api, next) })
	m.setRoots(next)

	// New handshakes with the new leaves and bundle only.
	for range 5 {
		if err := m.tcpLoad()(); err != nil {
			t.Errorf("TCP after rotation: %v", err)
		}
	}
	httpLoad.finish(t, "HTTP during root rotation")
	tcpLoad.finish(t, "TCP (a handshake each) during root rotation")
	if got := m.web.certs().TrustBundles["weft-roots"]; len(got) != 1 || got[0].SHA256 != mtls.Fingerprint(next.Root()) {
		t.Errorf("web trust bundle after rotation = %+v", got)
	}
}

// TestRBACDenyClosesOpenTCPConnection (RELIABILITY #8): a deny added
// while a connection is open closes it; new connections are refused.
func TestRBACDenyClosesOpenTCPConnection(t *testing.T) {
	m := newMeshTest(t, meshOptions{})
	c := dialWithDeadline(t, m.webAddr(webToTCP))
	io.WriteString(c, "ping")
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatalf("echo before the deny: %v", err)
	}

	m.mu.Lock()
	m.allowed = []string{serviceID(t, "lb")}
	m.mu.Unlock()
	m.publishAPI()
	if got, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) || len(got) > 0 {
		t.Errorf("open connection after the deny read %q, %v; want it closed", got, err)
	}
	if err := m.echoThroughMesh(m.webAddr(webToTCP), "again"); err == nil {
		t.Error("a new connection from the denied source was served")
	}
}

// TestL7PathDeny (RELIABILITY #8, #9): a deny on /admin answers 403
// rbac_denied for every spelling of it; other paths pass, normalized.
func TestL7PathDeny(t *testing.T) {
	m := newMeshTest(t, meshOptions{})
	m.mu.Lock()
	m.l7Deny = xdstest.Policy([]*rbacv3.Permission{xdstest.PathPrefix("/admin")}, xdstest.Principal(serviceID(t, "web")))
	m.mu.Unlock()
	v := m.publishAPI()
	poll.UntilTrue(t, wait, "the L7 deny", func() bool { return m.api.xdsStatus().Types[resourcev3.ListenerType].Version == v })

	addr := m.webAddr(webToAPI)
	tests := []struct {
		target   string
		wantCode int
		wantPath string
	}{
		{"/admin", 403, ""},
		{"/admin/users", 403, ""},
		{"//admin", 403, ""},
		{"/public/../admin", 403, ""},
		{"/public/%2e%2e/admin", 403, ""},
		{"/public%2F..%2Fadmin", 403, ""},
		{"/public\\..\\admin", 403, ""},
		{"/%61dmin", 403, ""},
		{"/admin#x", 403, ""},
		{"/public", 200, "/public"},
		{"/public//a/./b/../c?q=1", 200, "/public/a/c?q=1"},
		{"/public#/../admin", 200, "/public"},
	}
	for _, tt := range tests {
		code, header, body := rawGet(t, addr, tt.target)
		if code != tt.wantCode {
			t.Errorf("GET %s: %d %q, want %d", tt.target, code, body, tt.wantCode)
			continue
		}
		if code == 403 && header.Get("x-weft-error") != "rbac_denied" {
			t.Errorf("GET %s: x-weft-error %q, want rbac_denied", tt.target, header.Get("x-weft-error"))
		}
		if code == 200 && !strings.HasPrefix(body, "path="+tt.wantPath+" ") {
			t.Errorf("GET %s: the app saw %q, want path %s", tt.target, body, tt.wantPath)
		}
	}
	m.app.mu.Lock()
	defer m.app.mu.Unlock()
	for _, p := range m.app.paths {
		if strings.Contains(p, "admin") {
			t.Errorf("the app saw %q", p)
		}
	}
}

// rawGet sends target verbatim over HTTP/1.1.
func rawGet(t *testing.T, addr, target string) (int, http.Header, string) {
	t.Helper()
	c := dialWithDeadline(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestNotReadyWithoutLeaf: a sidecar whose configuration presents the
// leaf is not ready until the certificate service has signed one; the
// token file is re-read, so fixing it is enough.
func TestNotReadyWithoutLeaf(t *testing.T) {
	tl := newTestLog(t)
	svc := &certService{}
	svc.ca.Store(newCA(t))
	cp := startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, svc) })
	cp.setFor(webNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.TCPListener(webToTCP, "127.0.0.1:0", apiTCP)},
		resourcev3.ClusterType:  {xdstest.WithClusterTLS(xdstest.EDSCluster(apiTCP), xdstest.UpstreamTLS(apiTCP, serviceID(t, "api")))},
		resourcev3.EndpointType: {loadAssignment(apiTCP, []string{"127.0.0.1:1"})},
		resourcev3.SecretType:   {xdstest.RootsSecretOf(bundle(svc.ca.Load()))},
	})
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxyWith(t, proxy.Options{ProxyID: webNode, XDSAddrs: []string{cp.addr}, TokenFile: tokenFile, Logger: tl.slog()})
	poll.UntilTrue(t, wait, "a refused certificate request", func() bool {
		_, body := p.adminGet("/ready")
		return strings.Contains(string(body), "waiting for the leaf certificate") && strings.Contains(string(body), "ACL token not found")
	})
	if code, _ := p.adminGet("/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/ready without a leaf = %d, want 503", code)
	}
	if err := os.WriteFile(tokenFile, []byte(aclToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.waitReady()
	if leaf := p.certs().Identity.Leaf; leaf == nil || leaf.SPIFFEID != serviceID(t, "web") {
		t.Errorf("leaf after fixing the token = %+v", leaf)
	}
}
