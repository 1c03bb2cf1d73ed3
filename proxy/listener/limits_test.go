package listener

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/telemetry"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

// limitedEnv is newEnv with a connection limit per listener and metrics.
func limitedEnv(t *testing.T, limit int) (*env, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	mt := metrics.New(reg)
	clusters := cluster.NewManager(cluster.Options{})
	m := NewManager(Options{Clusters: clusters, DrainTimeout: time.Second, MaxConnections: limit,
		Telemetry: &telemetry.Telemetry{Metrics: mt},
		Logger:    slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(m.Close)
	return &env{t: t, clusters: clusters, m: m}, reg
}

// TestListenerConnectionLimit (issue 14): a listener holds at most its
// limit of connections open; one more is closed at once and counted, and a
// connection that closes frees its place, for HTTP and TCP listeners.
func TestListenerConnectionLimit(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	for _, tt := range []struct {
		name     string
		listener func() *config.Listener
		cluster  *config.Cluster
	}{
		{"http", func() *config.Listener { return httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api")) }, staticCluster("api", up)},
		{"tcp", func() *config.Listener { return tcpListener("l", "127.0.0.1:0", "api") }, staticCluster("api", echoServer(t))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const limit = 3
			e, reg := limitedEnv(t, limit)
			e.mustApply(runtime(map[string]*config.Cluster{"api": tt.cluster}, tt.listener()))
			addr := e.addr("l")
			refused := func() float64 { return refusedCount(t, reg, addr) }
			var held []net.Conn
			for range limit {
				c := dial(t, addr)
				held = append(held, c)
			}
			// The held connections are accepted and registered before the
			// next is judged: one request each proves it.
			for i, c := range held {
				if err := exchange(c, tt.name); err != nil {
					t.Fatalf("connection %d of the limit: %v", i, err)
				}
			}
			extra := dial(t, addr)
			if got := readAll(t, extra); got != "" {
				t.Fatalf("a connection over the limit read %q, want it closed at once", got)
			}
			if got := refused(); got != 1 {
				t.Errorf("weft_proxy_listener_connections_refused_total = %v, want 1", got)
			}
			held[0].Close()
			poll.Until(t, 10*time.Second, "a place freed by a closed connection", func() error {
				c := dial(t, addr)
				defer c.Close()
				return exchange(c, tt.name)
			})
		})
	}
}

// refusedCount reads weft_proxy_listener_connections_refused_total of the
// listener bound to addr; 0 before any refusal.
func refusedCount(t *testing.T, reg *prometheus.Registry, addr string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weft_proxy_listener_connections_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == addr {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// exchange sends one request (HTTP) or line (TCP echo) on c and reads
// the answer.
func exchange(c net.Conn, kind string) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if kind == "tcp" {
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping\n" {
			return fmt.Errorf("echo: %q, %v", line, err)
		}
		return nil
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: api\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// TestSlowlorisHeaderTimeout (issue 14): clients that send their headers
// a byte at a time are closed when the header read timeout ends
// (request_headers_timeout), and a well-behaved client on its own
// connections is served throughout.
func TestSlowlorisHeaderTimeout(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	e := newEnv(t, time.Second)
	l := httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))
	l.HTTP.RequestHeadersTimeout = 500 * time.Millisecond
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)}, l))
	addr := e.addr("l")

	legit := startLegitClient(t, addr)
	t.Cleanup(func() { legit.stop() })
	const slow = 50
	closed := make(chan time.Duration, slow)
	for range slow {
		c := dial(t, addr)
		go func() {
			start := time.Now()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: api\r\n")
			ticker := time.NewTicker(50 * time.Millisecond)
			defer ticker.Stop()
			for range ticker.C {
				if _, err := io.WriteString(c, "X"); err != nil {
					break
				}
				// A write can succeed into the socket buffer after
				// the peer closed; a read tells the close for sure.
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					break
				}
			}
			closed <- time.Since(start)
		}()
	}
	for range slow {
		select {
		case d := <-closed:
			if d > 5*time.Second {
				t.Errorf("a slowloris connection lasted %v; want it closed near the 500ms header timeout", d)
			}
		case <-time.After(wait):
			t.Fatal("slowloris connections still open 10s after they started")
		}
	}
	poll.UntilTrue(t, wait, "50 legitimate requests made", func() bool { return legit.ok.Load()+legit.failed.Load() >= 50 })
	ok, failed := legit.stop()
	if total := ok + failed; float64(ok)/float64(total) < 0.999 {
		t.Errorf("legitimate client: %d ok, %d failed alongside the slowloris; want ≥ 99.9%% success", ok, failed)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestConnectionLimitFreesEveryKindOfConnection: connections served by
// each server — lean HTTP/1.1, HTTP/2 (h2c, served by net/http's server)
// — free their place when they close, so many more than the limit can be
// served one after another.
func TestConnectionLimitFreesEveryKindOfConnection(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	e, _ := limitedEnv(t, 2)
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)}, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	for name, tr := range map[string]*http.Transport{
		"HTTP/1.1": {},
		"h2c":      {Protocols: h2c},
	} {
		client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for i := range 20 {
			resp, err := client.Get("http://" + e.addr("l") + "/")
			if err != nil {
				t.Fatalf("%s: request %d of 20 over new connections with a limit of 2: %v", name, i+1, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
			// The server sees the close asynchronously: wait for the
			// place to be free before the next connection.
			poll.UntilTrue(t, wait, "the closed connection forgotten", func() bool { return e.openConnections("l") == 0 })
		}
	}
}
