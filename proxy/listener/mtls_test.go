package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/rbac"
)

const roots = "weft-roots"

var (
	webID = pkitest.ID("web")
	apiID = pkitest.ID("api")
	lbID  = pkitest.ID("lb")
)

// meshEnv is a listener Manager serving as the api workload, with a CA.
type meshEnv struct {
	*env
	ca    *pkitest.CA
	trust *mtls.Trust
}

func newMeshEnv(t *testing.T, drain time.Duration, with ...func(*Options)) *meshEnv {
	t.Helper()
	ca := pkitest.NewCA(t, "root")
	trust := &mtls.Trust{}
	setBundle(t, trust, ca)
	creds := mtls.Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, apiID)), Trust: trust}
	clusters := cluster.NewManager(cluster.Options{Credentials: creds})
	opts := Options{
		Clusters:     clusters,
		Credentials:  creds,
		LocalID:      func() string { return apiID },
		DrainTimeout: drain,
		Logger:       slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range with {
		f(&opts)
	}
	m := NewManager(opts)
	t.Cleanup(m.Close)
	return &meshEnv{env: &env{t: t, clusters: clusters, m: m}, ca: ca, trust: trust}
}

func setBundle(t *testing.T, trust *mtls.Trust, cas ...*pkitest.CA) {
	t.Helper()
	b, err := mtls.ParseBundle(pkitest.Bundle(cas...))
	if err != nil {
		t.Fatal(err)
	}
	trust.Set(map[string]*mtls.Bundle{roots: b})
}

func serverTLS(alpn ...string) *mtls.Server {
	return &mtls.Server{MinVersion: tls.VersionTLS12, ALPN: alpn, RequireClientCert: true, TrustBundle: roots,
		PeerURISANs: []match.String{match.MustString(match.Prefix, "spiffe://"+pkitest.TrustDomain+"/", false)}}
}

func withTLS(l *config.Listener, p *mtls.Server, engines ...*rbac.Engine) *config.Listener {
	l.TLS, l.RBAC = p, engines
	return l
}

// clientTLS is a mesh client presenting cert that expects the api identity.
func (e *meshEnv) clientTLS(cert tls.Certificate, alpn ...string) *tls.Config {
	trust := &mtls.Trust{}
	setBundle(e.t, trust, e.ca)
	cfg := mtls.Credentials{Leaf: pkitest.NewStaticLeaf(cert), Trust: trust}.ClientConfig(&mtls.Client{
		TrustBundle: roots, ALPN: alpn, PeerURISANs: []match.String{match.MustString(match.Exact, apiID, false)}})
	return cfg
}

// counter is a TCP backend that counts connections and bytes, and echoes.
type counter struct {
	addr  string
	conns atomic.Int32
	bytes atomic.Int64
}

func countingEcho(t *testing.T) *counter {
	t.Helper()
	c := &counter{}
	c.addr = testnet.Serve(t, func(conn net.Conn) {
		c.conns.Add(1)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			c.bytes.Add(int64(n))
			if n > 0 {
				conn.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
	return c
}

func allowOnly(ids ...string) *rbac.Engine {
	var ps []rbac.Principal
	for _, id := range ids {
		m := match.MustString(match.Exact, id, false)
		ps = append(ps, rbac.Authenticated(&m))
	}
	return &rbac.Engine{Action: rbac.Allow, Policies: []rbac.Policy{{Name: "allow", Permissions: []rbac.Permission{rbac.AnyPermission()}, Principals: ps}}}
}

// echoOverTLS writes msg over a new mTLS connection and reads it back.
func echoOverTLS(t *testing.T, addr string, cfg *tls.Config, msg string) (string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, msg); err != nil {
		return "", err
	}
	got := make([]byte, len(msg))
	_, err = io.ReadFull(conn, got)
	return string(got), err
}

// TestMTLSRejections (RELIABILITY #5): every bad client fails at the
// handshake and not one byte reaches the app.
func TestMTLSRejections(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	app := countingEcho(t)
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app", app.addr)},
		withTLS(tcpListener("public_listener", "127.0.0.1:0", "local_app"), serverTLS())))
	addr := e.addr("public_listener")
	foreign := pkitest.NewCA(t, "foreign")
	tests := []struct {
		name string
		cert *tls.Certificate
	}{
		{"no client certificate", nil},
		{"foreign CA", ptr(foreign.Leaf(t, webID))},
		{"expired", ptr(e.ca.Issue(t, pkitest.LeafSpec{URIs: []string{webID}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))},
		{"right CA, wrong SPIFFE ID (other trust domain)", ptr(e.ca.Leaf(t, "spiffe://evil.local/ns/default/dc/dc1/svc/web"))},
		{"DNS SAN instead of URI SAN", ptr(e.ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"web"}}))},
		{"two URI SANs", ptr(e.ca.Issue(t, pkitest.LeafSpec{URIs: []string{webID, lbID}}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if tt.cert == nil {
					return &tls.Certificate{}, nil
				}
				return tt.cert, nil
			}}
			if got, err := echoOverTLS(t, addr, cfg, "secret"); err == nil {
				t.Errorf("echoed %q through a rejected handshake", got)
			}
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if got, _ := io.ReadAll(c); len(got) > 0 && !strings.HasPrefix(string(got), "\x15") {
			t.Errorf("plaintext client read %q", got)
		}
	})
	if n, b := app.conns.Load(), app.bytes.Load(); n != 0 || b != 0 {
		t.Fatalf("the app saw %d connections and %d bytes, want none", n, b)
	}
	if got, err := echoOverTLS(t, addr, e.clientTLS(e.ca.Leaf(t, webID)), "hello"); err != nil || got != "hello" {
		t.Errorf("mesh client echo = %q, %v", got, err)
	}
}

// TestWarmingListenerFailsHandshakes: until the bundle arrives, a TLS
// listener accepts sockets but completes no handshake.
func TestWarmingListenerFailsHandshakes(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	e.trust.Set(map[string]*mtls.Bundle{})
	app := countingEcho(t)
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app", app.addr)},
		withTLS(tcpListener("public_listener", "127.0.0.1:0", "local_app"), serverTLS())))
	addr := e.addr("public_listener")
	if _, err := echoOverTLS(t, addr, e.clientTLS(e.ca.Leaf(t, webID)), "early"); err == nil {
		t.Fatal("handshake succeeded before the trust bundle arrived")
	}
	setBundle(t, e.trust, e.ca)
	if got, err := echoOverTLS(t, addr, e.clientTLS(e.ca.Leaf(t, webID)), "later"); err != nil || got != "later" {
		t.Errorf("after the bundle arrived: %q, %v", got, err)
	}
	if app.bytes.Load() != int64(len("later")) {
		t.Errorf("app saw %d bytes, want only the %d sent after the bundle arrived", app.bytes.Load(), len("later"))
	}
}

// TestNetworkRBAC: a denied peer is closed right after its handshake, and
// an RBAC change closes the open connections of a newly denied source.
func TestNetworkRBAC(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	app := countingEcho(t)
	clusters := map[string]*config.Cluster{"local_app": staticCluster("local_app", app.addr)}
	listener := func(allowed ...string) *config.Listener {
		return withTLS(tcpListener("public_listener", "127.0.0.1:0", "local_app"), serverTLS(), allowOnly(allowed...))
	}
	e.mustApply(runtime(clusters, listener(webID)))
	addr := e.addr("public_listener")
	web, lb := e.clientTLS(e.ca.Leaf(t, webID)), e.clientTLS(e.ca.Leaf(t, lbID))

	if _, err := echoOverTLS(t, addr, lb, "denied"); err == nil {
		t.Fatal("a denied peer's bytes were echoed")
	}
	if app.bytes.Load() != 0 || app.conns.Load() != 0 {
		t.Fatalf("the app saw %d connections and %d bytes of a denied peer", app.conns.Load(), app.bytes.Load())
	}

	open, err := tls.Dial("tcp", addr, web)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open.SetDeadline(time.Now().Add(wait))
	io.WriteString(open, "ping")
	if _, err := io.ReadFull(open, make([]byte, 4)); err != nil {
		t.Fatalf("allowed connection: %v", err)
	}

	e.mustApply(runtime(clusters, listener(lbID))) // web is now denied
	if _, err := io.ReadAll(open); err != nil && !isClosed(err) {
		t.Fatalf("reading the newly denied connection: %v", err)
	}
	if _, err := io.WriteString(open, "more"); err == nil {
		if _, err := io.ReadFull(open, make([]byte, 4)); err == nil {
			t.Error("the newly denied connection still echoes")
		}
	}
	if got, err := echoOverTLS(t, addr, lb, "lb now"); err != nil || got != "lb now" {
		t.Errorf("newly allowed peer: %q, %v", got, err)
	}
}

func isClosed(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &op)
}

// tlsHTTPClient is an HTTP client over one mesh TLS config.
func tlsHTTPClient(cfg *tls.Config, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: wait}
}

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

func recordingBackend(t *testing.T) (string, *seen) {
	t.Helper()
	s := &seen{}
	return backend(t, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
		io.WriteString(w, "app "+r.URL.RequestURI())
	}), s
}

func TestHTTPOverMTLS(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	app, seen := recordingBackend(t)
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app", app)},
		withTLS(httpListener(t, "public_listener", "127.0.0.1:0", prefixRoute("/", "local_app")), serverTLS("h2", "http/1.1"))))
	url := "https://" + e.addr("public_listener") + "/x"
	for _, tt := range []struct {
		name      string
		alpn      []string
		wantProto string
	}{{"h2 by ALPN", []string{"h2", "http/1.1"}, "HTTP/2.0"}, {"HTTP/1.1 by ALPN", []string{"http/1.1"}, "HTTP/1.1"}} {
		t.Run(tt.name, func(t *testing.T) {
			client := tlsHTTPClient(e.clientTLS(e.ca.Leaf(t, webID), tt.alpn...), tt.alpn[0] == "h2")
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("X-Weft-Error", "forged")
			req.Header.Set("X-Weft-Trace", "forced")
			req.Header.Set("X-Forwarded-Client-Cert", "By=spiffe://evil;URI=spiffe://weft.local/ns/default/dc/dc1/svc/admin")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "app /x" || resp.Proto != tt.wantProto {
				t.Fatalf("got %s %d %q, want %s 200 from the app", resp.Proto, resp.StatusCode, body, tt.wantProto)
			}
			r := seen.last()
			if got := r.Header.Values("X-Forwarded-Client-Cert"); len(got) != 1 || got[0] != "By="+apiID+";URI="+webID {
				t.Errorf("app saw x-forwarded-client-cert %q", got)
			}
			if r.Header.Get("X-Weft-Error") != "" || r.Header.Get("X-Weft-Trace") != "" {
				t.Errorf("client-supplied x-weft-* headers reached the app: %v", r.Header)
			}
		})
	}
}

// TestHTTPRBACAndPathNormalization (RELIABILITY #8, #9): an L7 deny on a
// path answers 403 for every spelling of the path, and the app sees
// normalized paths.
func TestHTTPRBACAndPathNormalization(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	app, _ := recordingBackend(t)
	lbName := match.MustString(match.Exact, lbID, false)
	deny := &rbac.Engine{Action: rbac.Deny, Policies: []rbac.Policy{{Name: "lb-admin",
		Permissions: []rbac.Permission{rbac.URLPath(match.MustString(match.Prefix, "/admin", false))},
		Principals:  []rbac.Principal{rbac.Authenticated(&lbName)}}}}
	l := withTLS(httpListener(t, "public_listener", "127.0.0.1:0", prefixRoute("/", "local_app")), serverTLS("h2", "http/1.1"))
	l.HTTP.RBAC = []*rbac.Engine{deny}
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app", app)}, l))
	addr := e.addr("public_listener")

	lb := e.clientTLS(e.ca.Leaf(t, lbID), "h2", "http/1.1")
	tests := []struct {
		target   string
		wantCode int
		wantBody string
	}{
		{"/admin", 403, ""},
		{"/admin/users", 403, ""},
		{"//admin", 403, ""},
		{"/public/../admin", 403, ""},
		{"/public/%2e%2e/admin", 403, ""},
		{"/public/%2E%2E/admin", 403, ""},
		{"/public%2F..%2Fadmin", 403, ""},
		{"/public\\..\\admin", 403, ""},
		{"/public%5C..%5Cadmin", 403, ""},
		{"/%61dmin", 403, ""},
		{"/./admin", 403, ""},
		{"/admin#frag", 403, ""},
		{"/public", 200, "app /public"},
		{"/public//a/./b/../c", 200, "app /public/a/c"},
		{"/public/%7Euser?q=1", 200, "app /public/~user?q=1"},
		{"/public#/../admin", 200, "app /public"},
	}
	// Malformed escapes are refused by net/http before any handler (400 on
	// HTTP/1.1; on h2 the stream is reset), so only HTTP/1.1 is checked.
	if code, _, _ := rawRequest(t, addr, lb, "/a%zz", false); code != 400 {
		t.Errorf("GET /a%%zz: %d, want 400", code)
	}
	for _, h2 := range []bool{false, true} {
		for _, tt := range tests {
			code, header, body := rawRequest(t, addr, lb, tt.target, h2)
			if code != tt.wantCode || (tt.wantBody != "" && body != tt.wantBody) {
				t.Errorf("h2=%v GET %s: %d %q, want %d %q", h2, tt.target, code, body, tt.wantCode, tt.wantBody)
			}
			if code == 403 && header.Get("x-weft-error") != "rbac_denied" {
				t.Errorf("h2=%v GET %s: x-weft-error %q, want rbac_denied", h2, tt.target, header.Get("x-weft-error"))
			}
		}
	}
	web := e.clientTLS(e.ca.Leaf(t, webID), "h2", "http/1.1")
	if code, _, body := rawRequest(t, addr, web, "/admin", true); code != 200 || body != "app /admin" {
		t.Errorf("web GET /admin: %d %q, want 200 from the app", code, body)
	}
}

// rawRequest sends a request with target exactly as given (HTTP/1.1 over
// a raw TLS connection, or h2 through http.Transport with an opaque URL).
func rawRequest(t *testing.T, addr string, cfg *tls.Config, target string, h2 bool) (int, http.Header, string) {
	t.Helper()
	if h2 {
		req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
		req.URL.Opaque = "//" + addr + target
		resp, err := tlsHTTPClient(cfg, true).Do(req)
		if err != nil {
			t.Fatalf("h2 GET %s: %v", target, err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("h2 GET %s: spoke %s", target, resp.Proto)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestRBACChangeClosesHTTPConnections: a keep-alive (h2) connection of a
// newly denied source is closed.
func TestRBACChangeClosesHTTPConnections(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	app, _ := recordingBackend(t)
	clusters := map[string]*config.Cluster{"local_app": staticCluster("local_app", app)}
	listener := func(allowed ...string) *config.Listener {
		return withTLS(httpListener(t, "public_listener", "127.0.0.1:0", prefixRoute("/", "local_app")), serverTLS("h2", "http/1.1"), allowOnly(allowed...))
	}
	e.mustApply(runtime(clusters, listener(webID)))
	addr := e.addr("public_listener")
	var dials atomic.Int32
	cfg := e.clientTLS(e.ca.Leaf(t, webID), "h2")
	tr := &http.Transport{ForceAttemptHTTP2: true, DialTLSContext: nil, TLSClientConfig: cfg}
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}
	client := &http.Client{Transport: tr, Timeout: wait}
	get := func() (int, error) {
		resp, err := client.Get("https://" + addr + "/")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.ReadAll(resp.Body)
		return resp.StatusCode, nil
	}
	for range 3 {
		if code, err := get(); err != nil || code != 200 {
			t.Fatalf("allowed GET: %d, %v", code, err)
		}
	}
	if dials.Load() != 1 {
		t.Fatalf("%d connections for 3 requests, want one kept alive", dials.Load())
	}
	e.mustApply(runtime(clusters, listener(lbID)))
	// The swap closed the kept-alive connection: the next request on it
	// fails, and so does the one after on a new connection.
	for i := range 2 {
		if code, err := get(); err == nil {
			t.Errorf("request %d after web was denied: %d, want it refused", i, code)
		}
	}
	if dials.Load() < 2 {
		t.Error("no new connection was dialled after the denied one was closed")
	}
}

// TestResumptionAcrossSwapAndBundleChange (RELIABILITY #7): sessions
// resume across a configuration swap, and a session resumed with a
// certificate from a CA that left the bundle fails.
func TestResumptionAcrossSwapAndBundleChange(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	old := pkitest.NewCA(t, "old")
	setBundle(t, e.trust, e.ca, old)
	app := countingEcho(t)
	apply := func() {
		e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app", app.addr)},
			withTLS(tcpListener("public_listener", "127.0.0.1:0", "local_app"), serverTLS())))
	}
	apply()
	addr := e.addr("public_listener")
	cfg := e.clientTLS(old.Leaf(t, webID))
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	resumed := func() (bool, error) {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		io.WriteString(conn, "x")
		if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
			return false, err
		}
		return conn.ConnectionState().DidResume, nil
	}
	if r, err := resumed(); err != nil || r {
		t.Fatalf("first connection: resumed %v, %v", r, err)
	}
	apply() // a new configuration, same TLS context
	if r, err := resumed(); err != nil || !r {
		t.Fatalf("after a swap: resumed %v, %v; want a resumed session", r, err)
	}
	setBundle(t, e.trust, e.ca) // the old CA is removed
	if _, err := resumed(); err == nil {
		t.Error("a session resumed with a certificate of a removed CA succeeded")
	}
}

func ptr[T any](v T) *T { return &v }
