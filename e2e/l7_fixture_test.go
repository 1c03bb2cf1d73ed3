package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// instance is one service instance of an L7 test: an HTTP handler (or a
// raw listener) registered in Consul with metadata, behind a sidecar.
type instance struct {
	id, service string
	meta        map[string]string
	handler     http.Handler // nil: the instance accepts TCP and never answers
	// serve, when set, serves the instance's listener instead of handler
	// (a gRPC server, say) until the listener closes.
	serve func(net.Listener)
}

// l7Mesh starts Consul and the control plane, writes entries, registers
// the instances and a web-1 whose upstream to "api" listens on m.apiPort,
// starts every sidecar, and waits until every instance is passing.
func l7Mesh(t *testing.T, instances []instance, entries ...api.ConfigEntry) *mesh {
	t.Helper()
	m := newMesh(t)
	for _, e := range entries {
		m.setEntry(t, e)
	}
	counts := map[string]int{}
	for _, in := range instances {
		m.hits[in.id] = &atomic.Int64{}
		var port int
		if in.serve != nil {
			port = startServe(t, in.serve)
		} else {
			port = startHandler(t, in.handler, m.hits[in.id])
		}
		m.registerWithMeta(t, in.id, in.service, port, in.meta, nil)
		counts[in.service]++
	}
	m.register(t, "web-1", "web", freePort(t), []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort},
	})
	for _, in := range instances {
		m.startProxy(t, in.id+"-sidecar-proxy")
	}
	m.startProxy(t, "web-1-sidecar-proxy")
	for svc, n := range counts {
		consultest.WaitForPassing(t, m.consul.Client(), svc, n)
	}
	return m
}

// startHandler serves h on a loopback port, counting requests in hits;
// with a nil h it accepts connections and never answers (a black hole).
func startHandler(t *testing.T, h http.Handler, hits *atomic.Int64) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if h == nil {
		go func() {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				hits.Add(1)
				held = append(held, c)
			}
		}()
		return l.Addr().(*net.TCPAddr).Port
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// startServe runs serve on a loopback listener closed at cleanup.
func startServe(t *testing.T, serve func(net.Listener)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go serve(l)
	return l.Addr().(*net.TCPAddr).Port
}

// named answers with the instance name.
func named(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, id) })
}

// slow answers with the instance name after d, or when the request ends.
func slow(id string, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, id)
	})
}

// flaky fails every other request with 503.
func flaky(id string) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, id+" is flaky", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, id)
	})
}

// failing always answers 500.
func failing(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, id+" is broken", http.StatusInternalServerError)
	})
}

// result is one request's outcome as the calling app saw it.
type result struct {
	code   int
	body   string
	reason string // x-weft-error
	took   time.Duration
	err    error
}

// do sends one request to web's api upstream with the given headers.
func (m *mesh) do(client *http.Client, path string, header map[string]string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", m.apiPort, path), nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	var body [256]byte
	n, _ := resp.Body.Read(body[:])
	r := result{code: resp.StatusCode, body: trimBody(body[:n]), reason: resp.Header.Get("x-weft-error"), took: time.Since(start)}
	return r
}

func trimBody(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// waitServedOnly waits until `run` consecutive requests succeed, each
// answered by an instance in want.
// waitEndpoints waits until proxyID has accepted load assignments with n
// healthy endpoints in all, so that pickers built from them (a hash ring, say)
// no longer change under the test.
func (m *mesh) waitEndpoints(t *testing.T, proxyID string, n int) {
	t.Helper()
	poll.Until(t, 30*time.Second, proxyID+" has "+strconv.Itoa(n)+" healthy endpoints", func() error {
		resp, err := http.Get("http://" + m.proxyAdmin[proxyID] + "/config_dump")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var dump struct {
			Resources map[string]struct {
				Items map[string]struct {
					Endpoints []struct {
						LBEndpoints []struct {
							HealthStatus string `json:"healthStatus"`
						} `json:"lbEndpoints"`
					} `json:"endpoints"`
				} `json:"items"`
			} `json:"resources"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
			return err
		}
		got := 0
		for _, cla := range dump.Resources["endpoints"].Items {
			for _, loc := range cla.Endpoints {
				for _, ep := range loc.LBEndpoints {
					if ep.HealthStatus == "HEALTHY" {
						got++
					}
				}
			}
		}
		if got != n {
			return fmt.Errorf("%d healthy endpoints", got)
		}
		return nil
	})
}

func (m *mesh) waitServedOnly(t *testing.T, header map[string]string, run int, want ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, w := range want {
		ok[w] = true
	}
	client := &http.Client{}
	streak := 0
	var last result
	deadline := time.Now().Add(30 * time.Second)
	for streak < run {
		if time.Now().After(deadline) {
			t.Fatalf("not served only by %v within 30s; last: %+v", want, last)
		}
		last = m.do(client, "/", header)
		if last.err == nil && last.code == http.StatusOK && ok[last.body] {
			streak++
		} else {
			streak = 0
		}
	}
}
