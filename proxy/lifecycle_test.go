package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
)

func TestNotReadyBeforeFirstConfig(t *testing.T) {
	tl := newTestLog(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := startProxy(t, tl, dead)
	poll.UntilTrue(t, wait, "a connection failure", func() bool { return p.xdsStatus().LastError != "" })
	code, body := p.adminGet("/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "waiting for the first xDS listeners and clusters; not connected") {
		t.Errorf("/ready = %d %q, want 503 explaining what is missing", code, body)
	}
	if code, body := p.adminGet("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q, want 200", code, body)
	}
}

func TestFailsOverToTheNextControlPlane(t *testing.T) {
	tl := newTestLog(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	cp.set("v1", mesh{api: []string{namedBackend(t, "b1")}}.resources())
	p := startProxy(t, tl, dead, cp.addr)
	p.waitReady()
	if got := hits(t, p.listenerAddr(apiListener), 3); got["b1"] != 3 {
		t.Errorf("hits = %v, want 3 on b1", got)
	}
}

// TestShutdownDrainsInFlightRequests cancels Run while a request is in
// flight: the request completes, new connections are refused, Run returns.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	tl := newTestLog(t)
	entered, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	}))
	t.Cleanup(slow.Close)
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	cp.set("v1", mesh{api: []string{strings.TrimPrefix(slow.URL, "http://")}}.resources())

	p, err := proxy.New(proxy.Options{ProxyID: nodeID, XDSAddrs: []string{cp.addr}, AdminAddr: "127.0.0.1:0", DrainTimeout: wait, Logger: tl.slog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	<-p.Started()
	rp := &runningProxy{t: t, admin: p.AdminAddr().String()}
	rp.waitReady()
	addr := rp.listenerAddr(apiListener)

	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	cancel()
	poll.UntilTrue(t, wait, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-runErr:
		t.Fatalf("Run returned (%v) before the in-flight request finished", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request = %+v, want 200 finished", r)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v", err)
	}
}
