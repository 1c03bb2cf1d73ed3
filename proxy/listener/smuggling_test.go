package listener

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
)

// TestRequestSmuggling (RELIABILITY #12): ambiguous framing is refused or
// normalized at every listener that parses HTTP/1.1, so that the upstream
// never sees two requests where the proxy saw one, and no further request
// is read from the connection.
// smuggled follows an ambiguous request: no proxy may read it from the
// same connection.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

func TestRequestSmuggling(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		// wantStatus is the first response's status; 0 means the proxy
		// may normalize (any status) as long as the upstream sees at
		// most one request.
		wantStatus int
	}{
		{"CL and TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"duplicate CL", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody", 400},
		{"bare LF in chunk", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nbody\r\n0\r\n\r\n", 0},
		{"TE not chunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 0},
		// Issue 14's table of ambiguous framings: each is followed by a
		// request that must never be read from the connection.
		{"CL and TE with Expect: 100-continue", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"HTTP/1.0 CL and TE with keep-alive", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE with OWS", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE after a tab", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE after a vertical tab", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + smuggled, 0},
		{"TE list ending in chunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, 0},
		{"TE obs-folded", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"CL list", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nbody" + smuggled, 0},
		{"CL with a sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nbody" + smuggled, 400},
		{"bare LF in the chunk size line", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n" + smuggled, 0},
	}
	for _, edge := range smugglingEdges {
		t.Run(edge.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					dialEdge, upstreamSaw := edge.start(t)
					c := dialEdge()
					io.WriteString(c, tt.raw)
					br := bufio.NewReader(c)
					resp, err := finalResponse(br)
					if want := tt.wantStatus; want != 0 && edge.refuses && (err != nil || resp.StatusCode != want) {
						t.Errorf("response %v, %v; want %d", resp, err, want)
					}
					// Nothing more: no response to a smuggled request, and the
					// connection ends.
					rest, err := io.ReadAll(br)
					if len(rest) > 0 {
						t.Errorf("after the first response the proxy sent %q", rest)
					}
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("the connection stayed open after the response: %v", err)
					}
					c.Close()
					if seen := upstreamSaw(); len(seen) > 1 || len(seen) == 1 && strings.Contains(seen[0], "smuggled") {
						t.Errorf("upstream saw %q", seen)
					}
				})
			}
		})
	}
	t.Run("h2c upgrade is not forwarded", func(t *testing.T) {
		dialEdge, upstreamSaw := plaintextEdge(HTTP1Lean)(t)
		c := dialEdge()
		io.WriteString(c, "GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("response %v, %v; want 200 over HTTP/1.1", resp, err)
		}
		resp.Body.Close()
		if seen := upstreamSaw(); len(seen) != 1 || seen[0] != "GET /u  upgrade=" {
			t.Errorf("upstream saw %q, want one plain request without Upgrade", seen)
		}
	})
}

// smugglingEdges are the listeners that parse HTTP/1.1 from a client:
// plaintext (the outbound listener, an ingress gateway's) and mTLS (the
// inbound listener), each with the lean server and with net/http's
// (--http1-server=net/http).
var smugglingEdges = []struct {
	name  string
	start func(t *testing.T) (dial func() net.Conn, upstreamSaw func() []string)
	// refuses: the lean server answers ambiguous framing with the
	// table's status; net/http's server frames it by Transfer-Encoding
	// (or, for HTTP/1.0, Content-Length), answers, and closes.
	refuses bool
}{
	{"plaintext lean server", plaintextEdge(HTTP1Lean), true},
	{"plaintext net/http server", plaintextEdge(HTTP1NetHTTP), false},
	{"mTLS lean server", mtlsEdge(HTTP1Lean), true},
	{"mTLS net/http server", mtlsEdge(HTTP1NetHTTP), false},
}

// finalResponse reads responses from br until one that is not 1xx.
func finalResponse(br *bufio.Reader) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

// plaintextEdge starts an HTTP listener in front of an upstream of its
// own, so a request a previous case left in flight cannot be counted
// here.
func plaintextEdge(server HTTP1Server) func(t *testing.T) (func() net.Conn, func() []string) {
	return func(t *testing.T) (func() net.Conn, func() []string) {
		e := newEnv(t, time.Second, func(o *Options) { o.HTTP1Server = server })
		app, saw := smugglingUpstream(t)
		e.mustApply(runtime(map[string]*config.Cluster{"api": app},
			httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
		addr := e.addr("l")
		return func() net.Conn { return dial(t, addr) }, saw
	}
}

// mtlsEdge starts an inbound listener (mTLS, HTTP/1.1 by ALPN) in front of
// an upstream of its own, and dials it as web.
func mtlsEdge(server HTTP1Server) func(t *testing.T) (func() net.Conn, func() []string) {
	return func(t *testing.T) (func() net.Conn, func() []string) {
		e := newMeshEnv(t, time.Second, func(o *Options) { o.HTTP1Server = server })
		app, saw := smugglingUpstream(t)
		e.mustApply(runtime(map[string]*config.Cluster{"local_app": app},
			withTLS(httpListener(t, "public_listener", "127.0.0.1:0", prefixRoute("/", "local_app")), serverTLS("h2", "http/1.1"))))
		addr, cfg := e.addr("public_listener"), e.clientTLS(e.ca.Leaf(t, webID), "http/1.1")
		return func() net.Conn {
			c := tls.Client(dial(t, addr), cfg)
			if err := c.Handshake(); err != nil {
				t.Fatalf("mTLS handshake: %v", err)
			}
			return c
		}, saw
	}
}

// smugglingUpstream is an app that records every request it reads.
func smugglingUpstream(t *testing.T) (*config.Cluster, func() []string) {
	var mu sync.Mutex
	var seen []string
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(b)+" upgrade="+r.Header.Get("Upgrade"))
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	return staticCluster("app", up), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func TestTCPMaxConnections(t *testing.T) {
	e := newEnv(t, time.Second)
	c := staticCluster("echo", echoServer(t))
	c.Limits = config.DefaultLimits()
	c.Limits.MaxConnections = 1
	e.mustApply(runtime(map[string]*config.Cluster{"echo": c}, tcpListener("l", "127.0.0.1:0", "echo")))
	first := dial(t, e.addr("l"))
	io.WriteString(first, "one")
	buf := make([]byte, 3)
	if _, err := io.ReadFull(first, buf); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second := dial(t, e.addr("l"))
	if n, err := second.Read(buf); err == nil {
		t.Errorf("second connection over max_connections read %d bytes, want it closed", n)
	}
	first.Close()
}
