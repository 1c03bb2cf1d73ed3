package listener

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/localreply"
)

func backend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: wait}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHTTPForwarding(t *testing.T) {
	e := newEnv(t, time.Second)
	var seen *http.Request
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r
		w.Header().Set("X-Upstream", "api")
		io.WriteString(w, "hello "+r.URL.RequestURI())
	})
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))

	resp, body := get(t, "http://"+e.addr("l")+"/a/b?q=1", http.Header{"Connection": {"keep-alive, X-Hop"}, "X-Hop": {"secret"}})
	if resp.StatusCode != 200 || body != "hello /a/b?q=1" || resp.Header.Get("X-Upstream") != "api" {
		t.Errorf("got %d %q headers %v, want 200 from the upstream", resp.StatusCode, body, resp.Header)
	}
	if seen.Header.Get("X-Hop") != "" {
		t.Error("hop-by-hop header named in Connection reached the upstream")
	}
	if !strings.HasPrefix(seen.Host, "127.0.0.1:") || seen.Host == up {
		t.Errorf("upstream saw Host %q, want the downstream Host", seen.Host)
	}
}

func TestHTTPProxyErrors(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name     string
		clusters map[string]*config.Cluster
		path     string
		wantKind string
		wantUp   string
	}{
		{"no route", map[string]*config.Cluster{"api": staticCluster("api", up)}, "/nowhere", "no_route", ""},
		{"cluster not arrived", nil, "/api", "no_healthy_upstream", "api"},
		{"no healthy endpoint", map[string]*config.Cluster{"api": staticCluster("api")}, "/api", "no_healthy_upstream", "api"},
		{"connect failure", map[string]*config.Cluster{"api": staticCluster("api", testnet.ClosedPort(t))}, "/api", "connect_failure", "api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Second)
			e.mustApply(runtime(tt.clusters, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/api", "api"))))
			resp, body := get(t, "http://"+e.addr("l")+tt.path, nil)
			if want := localreply.Reason(tt.wantKind).Status(); resp.StatusCode != want || resp.Header.Get("x-weft-error") != tt.wantKind {
				t.Errorf("got %d x-weft-error=%q, want %d %q", resp.StatusCode, resp.Header.Get("x-weft-error"), want, tt.wantKind)
			}
			var got struct{ Error, Upstream string }
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if diff := cmp.Diff(struct{ Error, Upstream string }{tt.wantKind, tt.wantUp}, got); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPHeaderLimit(t *testing.T) {
	e := newEnv(t, time.Second)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	tests := []struct {
		name     string
		header   http.Header
		wantCode int
	}{
		{"70 KiB of headers", http.Header{"X-Big": {strings.Repeat("a", 70<<10)}}, http.StatusRequestHeaderFieldsTooLarge},
		{"101 headers", manyHeaders(101), http.StatusRequestHeaderFieldsTooLarge},
		{"90 headers", manyHeaders(90), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, "http://"+e.addr("l")+"/", tt.header)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
		})
	}
}

func manyHeaders(n int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Add("X-H", strconv.Itoa(i))
	}
	return h
}

func TestHTTPInFlightRequestSurvivesRemoval(t *testing.T) {
	e := newEnv(t, wait)
	entered, release := make(chan struct{}), make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	addr := e.addr("l")

	type result struct {
		status int
		body   string
		close  bool
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			done <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), resp.Close}
	}()
	<-entered
	e.mustApply(runtime(nil))
	close(release)
	if got := <-done; got.status != 200 || got.body != "done" || !got.close {
		t.Errorf("in-flight request across removal = %+v, want 200 \"done\" with Connection: close", got)
	}
}

func TestHTTPRouteSwap(t *testing.T) {
	e := newEnv(t, time.Second)
	a := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	b := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	clusters := map[string]*config.Cluster{"a": staticCluster("a", a), "b": staticCluster("b", b)}
	e.mustApply(runtime(clusters, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "a"))))
	addr := e.addr("l")
	client := &http.Client{Timeout: wait} // one keep-alive connection across the swap
	fetch := func() string {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if got := fetch(); got != "a" {
		t.Fatalf("before swap got %q, want a", got)
	}
	e.mustApply(runtime(clusters, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "b"))))
	if got := fetch(); got != "b" {
		t.Errorf("after swap got %q on the same connection, want b", got)
	}
}

func TestUpgradedConnectionSurvivesRemoval(t *testing.T) {
	e := newEnv(t, wait)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.Copy(conn, brw)
	})
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	c := dial(t, e.addr("l"))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade response %v, %v; want 101", resp, err)
	}

	e.mustApply(runtime(nil))
	io.WriteString(c, "after removal")
	got := make([]byte, len("after removal"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "after removal" {
		t.Errorf("upgraded connection after removal read %q, %v", got, err)
	}
}

// TestActivityCountsRequests: Activity moves with every request, not with
// connections that carry none (a health check's connect), and stays put
// while idle.
func TestActivityCountsRequests(t *testing.T) {
	e := newEnv(t, time.Second)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	before := e.m.Activity()
	probe, err := net.Dial("tcp", e.addr("l"))
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	client := &http.Client{Timeout: wait}
	for range 3 { // one keep-alive connection, three requests
		resp, err := client.Get("http://" + e.addr("l") + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	if got := e.m.Activity() - before; got != 3 {
		t.Errorf("Activity grew by %d over a bare connect and 3 requests; want 3", got)
	}
	if a, b := e.m.Activity(), e.m.Activity(); a != b {
		t.Errorf("Activity moved while idle: %d → %d", a, b)
	}
}
