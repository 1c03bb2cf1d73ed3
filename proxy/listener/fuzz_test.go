package listener

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/route"
	"github.com/weft-mesh/weft/proxy/urlpath"
)

// FuzzHTTPEdge sends arbitrary bytes to an HTTP listener and checks what
// reaches the application behind it (RELIABILITY #12, #15, #9): every
// request it sees has a normalized path and no header only the mesh may
// set, however the client framed or spelled it; a client that sends one
// request never gets two to the application.
func FuzzHTTPEdge(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a//b/%2e%2e/c HTTP/1.1\r\nHost: x\r\nX-Weft-Error: forged\r\n\r\n",
		"GET /a\\..\\b HTTP/1.1\r\nHost: x\r\nx-forwarded-client-cert: By=spiffe://evil\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nbody\r\n0\r\n\r\n",
		"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
		"GET /%2F%2e%2E/x#frag HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://other/a/../b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabcGET /smuggled HTTP/1.0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbodyGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /inside HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nX-Weft-Forged: 1\r\n X-Weft-Folded: 2\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	edge := newFuzzEdge(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		// A fresh application per input: a request the proxy was still
		// forwarding for the previous input cannot be counted for this one.
		var mu sync.Mutex
		var seen []*http.Request
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			io.WriteString(w, "ok")
		}))
		edge.routeTo(t, strings.TrimPrefix(app.URL, "http://"))
		c, err := net.Dial("tcp", edge.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // the proxy answers and closes
		app.Close()            // waits for requests still in flight

		sent := countRequests(raw)
		mu.Lock()
		defer mu.Unlock()
		if len(seen) > sent {
			t.Fatalf("the client framed %d request(s) as Go reads them, the application got %d", sent, len(seen))
		}
		for _, r := range seen {
			if p := r.URL.EscapedPath(); !isNormal(p) {
				t.Errorf("application saw path %q, not normalized", p)
			}
			for k := range r.Header {
				if k == xfccHeader || strings.HasPrefix(k, meshHeaderPrefix) {
					t.Errorf("application saw mesh header %s: %q", k, r.Header[k])
				}
			}
		}
	})
}

// countRequests counts the requests a strict HTTP/1.1 reader finds in raw,
// reading each body as framed; it stops at the first it cannot read.
// Like Go's server, it skips up to 4 CR or LF after a POST (RFC 9112
// §2.2: a server should ignore empty lines before a request line).
func countRequests(raw []byte) int {
	br := bufio.NewReader(strings.NewReader(string(raw)))
	n := 0
	lastMethod := ""
	for {
		if lastMethod == http.MethodPost {
			peek, _ := br.Peek(4)
			br.Discard(numLeadingCRorLF(peek))
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return n
		}
		n++
		lastMethod = req.Method
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return n
		}
	}
}

// fuzzEdge is an HTTP listener whose one route goes to cluster "app".
// It lives as long as the fuzz target.
type fuzzEdge struct {
	m        *Manager
	clusters *cluster.Manager
	listener *config.Listener
	addr     string
}

func newFuzzEdge(f *testing.F) *fuzzEdge {
	e := &fuzzEdge{clusters: cluster.NewManager(cluster.Options{})}
	e.m = NewManager(Options{Clusters: e.clusters, DrainTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	f.Cleanup(e.m.Close)
	tbl, err := route.NewTable("routes", []route.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: []route.Route{prefixRoute("/", "app")}}})
	if err != nil {
		f.Fatal(err)
	}
	e.listener = &config.Listener{Name: "l", Address: "127.0.0.1:0", Mode: config.ModeHTTP, HTTP: &config.HTTP{
		Routes: tbl, MaxRequestHeaderBytes: config.DefaultMaxRequestHeaderBytes, MaxRequestHeaders: config.DefaultMaxRequestHeaders,
	}}
	e.routeTo(f, "127.0.0.1:1")
	for _, l := range e.m.Listeners() {
		if l.Name == "l" {
			e.addr = l.BoundAddress
		}
	}
	if e.addr == "" {
		f.Fatal("listener l not running")
	}
	return e
}

// routeTo points cluster "app" at addr; the listener keeps its socket.
func (e *fuzzEdge) routeTo(t testing.TB, addr string) {
	rt := runtime(map[string]*config.Cluster{"app": staticCluster("app", addr)}, e.listener)
	plan, err := e.m.Prepare(rt)
	if err != nil {
		t.Fatal(err)
	}
	e.clusters.Update(rt.Clusters)
	plan.Commit()
}

func isNormal(p string) bool {
	n, ok := urlpath.Normalize(p)
	return ok && n == p
}
