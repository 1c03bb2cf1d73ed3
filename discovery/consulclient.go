package discovery

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/http1client"
)

// ConsulConfig is the Consul API client configuration of the control
// plane and the CLI, the way every Consul tool does it: the environment
// first (api.DefaultConfig reads CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
// CONSUL_CACERT and the rest as Consul's CLI does), then addr and token
// when given. NewConsulClient makes its client.
//
// Its transport is sized for what the watcher does: one blocking query
// per service, each holding an HTTP/1.1 connection to the agent while it
// waits (5,014 at 5,000 services). Every idle connection is kept until
// it has been idle for IdleConnTimeout (90 s, Consul's): Consul's default
// pooled transport keeps at most 100 idle connections, 3 per host, so
// when more than three queries returned together (a rolling deploy, a
// health flap across a node) their connections were closed and every
// next query dialed a new one. Requests to Consul are small (a GET and
// its headers), so each connection's write buffer is 1 KiB instead of 4:
// 15 MiB less at 5,000 services. So is its read buffer: a response's
// head fits in it (a longer one is read by http.ReadResponse), and a
// body's reads larger than the buffer go past it; another 15 MiB.
func ConsulConfig(addr, token string) *api.Config {
	cfg := api.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	if token != "" {
		cfg.Token = token
	}
	cfg.Transport.MaxIdleConns = 0
	cfg.Transport.MaxIdleConnsPerHost = maxIdleConsulConns
	cfg.Transport.WriteBufferSize = consulWriteBufferSize
	cfg.Transport.ReadBufferSize = consulReadBufferSize
	return cfg
}

// NewConsulClient is api.NewClient(cfg) whose requests to an http://
// agent (the default) run on http1client.Client, each on its caller's
// goroutine: a held blocking query costs one goroutine, where
// http.Transport adds a read and a write loop per connection (10,028
// goroutines at 5,000 services). Requests that client does not take
// (bodies over 64 KiB), https:// and unix:// agents, and agents reached
// through an HTTP proxy (HTTP_PROXY) go through cfg's transport, set up
// by api.NewClient as usual. The pool's limits are cfg.Transport's.
func NewConsulClient(cfg *api.Config) (*api.Client, error) {
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client for %q: %w", cfg.Address, err)
	}
	// NewClient has resolved the address's scheme, and its HTTP client
	// is cfg.HttpClient, which sends through cfg.Transport unless the
	// agent is on a unix socket. Nothing has used it yet.
	if cfg.Scheme == "http" && cfg.HttpClient != nil && cfg.HttpClient.Transport == cfg.Transport && !proxied(cfg) {
		cfg.HttpClient.Transport = http1client.New(http1client.Options{
			Dial:            dialConsul,
			IdleTimeout:     cfg.Transport.IdleConnTimeout,
			MaxIdlePerHost:  cfg.Transport.MaxIdleConnsPerHost,
			Fallback:        func() *http.Transport { return cfg.Transport },
			ReadBufferSize:  cfg.Transport.ReadBufferSize,
			WriteBufferSize: cfg.Transport.WriteBufferSize,
		})
	}
	return client, nil
}

// proxied reports whether cfg's transport sends requests to the agent
// through an HTTP proxy, which http1client does not speak.
func proxied(cfg *api.Config) bool {
	if cfg.Transport.Proxy == nil {
		return false
	}
	u, err := cfg.Transport.Proxy(&http.Request{URL: &url.URL{Scheme: "http", Host: cfg.Address}})
	return err != nil || u != nil
}

// dialConsul connects to the agent as Consul's pooled transport does.
func dialConsul(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

const (
	// maxIdleConsulConns bounds the idle connections to one agent only
	// against a runaway: the watcher's queries bound how many there are.
	maxIdleConsulConns    = 1 << 16
	consulWriteBufferSize = 1 << 10
	consulReadBufferSize  = 1 << 10
)
