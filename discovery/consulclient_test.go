package discovery

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/http1client"
)

// TestConsulClientHoldsBlockingQueriesCheaply holds 64 blocking queries
// at a fake agent until all are open, counts the goroutines of
// http.Transport's connection loops while they wait, answers them
// together, and counts the connections the next 64 queries open. With
// Consul's default client each held query has a read and a write loop,
// and most queries reconnect (it keeps 3 idle connections per host);
// with NewConsulClient(ConsulConfig) no query has a loop of its own and
// almost none reconnect.
func TestConsulClientHoldsBlockingQueriesCheaply(t *testing.T) {
	const n = 64
	tests := []struct {
		name         string
		client       func(addr string) (*api.Client, error)
		atMost       int
		atLeast      int
		loopsAtLeast int
		loopsAtMost  int
	}{
		{name: "NewConsulClient", client: func(addr string) (*api.Client, error) { return NewConsulClient(ConsulConfig(addr, "")) },
			atMost: n / 8, loopsAtMost: 0},
		{name: "api.DefaultConfig", client: func(addr string) (*api.Client, error) {
			c := api.DefaultConfig()
			c.Address = addr
			return api.NewClient(c)
		}, atLeast: n / 2, loopsAtLeast: 2 * n, loopsAtMost: 2 * n},
		{name: "NewConsulClient, http:// address", client: func(addr string) (*api.Client, error) {
			return NewConsulClient(ConsulConfig("http://"+addr, ""))
		}, atMost: n / 8, loopsAtMost: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opened atomic.Int64
			var arrived sync.WaitGroup
			release := make(chan struct{})
			var releaseOnce sync.Once
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/health/connect/round-1" {
					arrived.Done()
					<-release
				}
				w.Header().Set("X-Consul-Index", "2")
				fmt.Fprint(w, "[]")
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					opened.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
			client, err := tc.client(srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			query := func(round string) error {
				var out []any
				_, err := client.Raw().Query("/v1/health/connect/round-"+round, &out, nil)
				return err
			}

			arrived.Add(n)
			var afterRound1 atomic.Int64
			var done sync.WaitGroup
			errs := make(chan error, 2*n)
			var second sync.WaitGroup
			second.Add(n)
			for range n {
				done.Add(1)
				go func() {
					defer done.Done()
					if err := query("1"); err != nil {
						errs <- err
					}
					second.Done()
					second.Wait() // every round-1 answer is in: count from here
					afterRound1.CompareAndSwap(0, opened.Load())
					if err := query("2"); err != nil {
						errs <- err
					}
				}()
			}
			arrived.Wait() // n queries held open: n connections
			if loops := transportLoops(); loops < tc.loopsAtLeast || loops > tc.loopsAtMost {
				t.Errorf("%d goroutines in http.Transport's connection loops while %d queries wait, want %d to %d", loops, n, tc.loopsAtLeast, tc.loopsAtMost)
			}
			releaseOnce.Do(func() { close(release) })
			done.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			reopened := int(opened.Load() - afterRound1.Load())
			t.Logf("%d queries answered together; the next %d opened %d new connections", n, n, reopened)
			if tc.atMost > 0 && reopened > tc.atMost {
				t.Errorf("opened %d new connections, want at most %d", reopened, tc.atMost)
			}
			if reopened < tc.atLeast {
				t.Errorf("opened %d new connections, want at least %d (the test would not tell the transports apart)", reopened, tc.atLeast)
			}
		})
	}
}

// transportLoops counts the goroutines running http.Transport's
// per-connection read and write loops.
func transportLoops() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "net/http.(*persistConn).readLoop(") +
		strings.Count(b.String(), "net/http.(*persistConn).writeLoop(")
}

// TestNewConsulClientKeepsConsulsTransportWhereNeeded: an agent reached
// through an HTTP proxy, or over https, keeps Consul's transport, which
// speaks both; a plain agent gets the lean client.
func TestNewConsulClientKeepsConsulsTransportWhereNeeded(t *testing.T) {
	tests := []struct {
		name string
		cfg  func() *api.Config
		lean bool
	}{
		{"plain agent", func() *api.Config { return ConsulConfig("127.0.0.1:8500", "") }, true},
		{"https agent", func() *api.Config { return ConsulConfig("https://127.0.0.1:8501", "") }, false},
		{"through an HTTP proxy", func() *api.Config {
			c := ConsulConfig("consul.example:8500", "")
			c.Transport.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.example:3128"})
			return c
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg()
			if _, err := NewConsulClient(cfg); err != nil {
				t.Fatal(err)
			}
			_, lean := cfg.HttpClient.Transport.(*http1client.Client)
			if lean != tt.lean {
				t.Errorf("transport %T, want the lean client: %v", cfg.HttpClient.Transport, tt.lean)
			}
		})
	}
}

// TestConsulClientReadsPastItsBuffer: through NewConsulClient's 1 KiB
// read buffer, an answer whose head is longer than the buffer, and one
// whose body is many times its size, decode whole.
func TestConsulClientReadsPastItsBuffer(t *testing.T) {
	if got := ConsulConfig("127.0.0.1:8500", "").Transport.ReadBufferSize; got != consulReadBufferSize {
		t.Fatalf("ConsulConfig's read buffer is %d bytes, want %d", got, consulReadBufferSize)
	}
	const instances = 500 // about 150 KiB of JSON
	tests := []struct {
		name      string
		extraHead int // bytes of an extra response header
	}{
		{"short head", 0},
		{"head longer than the buffer", 3 * consulReadBufferSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var entries []*api.ServiceEntry
			for i := range instances {
				entries = append(entries, &api.ServiceEntry{Service: &api.AgentService{
					ID: fmt.Sprintf("api-%d-sidecar-proxy", i), Service: "api-sidecar-proxy", Address: "10.0.0.1", Port: 20000 + i}})
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Consul-Index", "7")
				if tc.extraHead > 0 {
					w.Header().Set("X-Padding", strings.Repeat("p", tc.extraHead))
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(entries)
			}))
			t.Cleanup(srv.Close)
			client, err := NewConsulClient(ConsulConfig(srv.Listener.Addr().String(), ""))
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // the connection is reused between answers
				got, meta, err := client.Health().Connect("api", "", false, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != instances || got[instances-1].Service.Port != 20000+instances-1 || meta.LastIndex != 7 {
					t.Fatalf("got %d entries, index %d; want %d, index 7", len(got), meta.LastIndex, instances)
				}
			}
		})
	}
}
