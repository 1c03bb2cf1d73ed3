package listener

import (
	"bufio"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
)

// TestRequestSmuggling (RELIABILITY #12): ambiguous framing is refused or
// normalized at the edge, so that the upstream never sees two requests
// where the proxy saw one.
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, upstreamSaw := smugglingEdge(t)
			c := dial(t, addr)
			io.WriteString(c, tt.raw)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if tt.wantStatus != 0 && (err != nil || resp.StatusCode != tt.wantStatus) {
				t.Errorf("response %v, %v; want %d", resp, err, tt.wantStatus)
			}
			// Nothing more: no response to a smuggled request, and the
			// connection ends.
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Errorf("after the first response the proxy sent %q", rest)
			}
			c.Close()
			if seen := upstreamSaw(); len(seen) > 1 || len(seen) == 1 && strings.Contains(seen[0], "smuggled") {
				t.Errorf("upstream saw %q", seen)
			}
		})
	}
	t.Run("h2c upgrade is not forwarded", func(t *testing.T) {
		addr, upstreamSaw := smugglingEdge(t)
		c := dial(t, addr)
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

// smugglingEdge starts an HTTP listener in front of an upstream of its
// own, so a request a previous case left in flight cannot be counted
// here, and returns the listener's address and what the upstream saw.
func smugglingEdge(t *testing.T) (string, func() []string) {
	e := newEnv(t, time.Second)
	var mu sync.Mutex
	var seen []string
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(b)+" upgrade="+r.Header.Get("Upgrade"))
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	return e.addr("l"), func() []string {
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
