package discovery

import "github.com/hashicorp/consul/api"

// ConsulConfig is the Consul API client configuration of the control
// plane and the CLI, the way every Consul tool does it: the environment
// first (api.DefaultConfig reads CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
// CONSUL_CACERT and the rest as Consul's CLI does), then addr and token
// when given.
//
// Its transport is sized for what the watcher does: one blocking query
// per service, each holding an HTTP/1.1 connection to the agent while it
// waits (5,014 at 5,000 services). Consul's default pooled transport
// keeps at most 100 idle connections, 3 per host, so when more than three
// queries return together — a rolling deploy, a health flap across a
// node — their connections are closed and the next queries dial new
// ones: every query that returned reconnects. Here every idle connection
// is kept until it has been idle for IdleConnTimeout (90 s, Consul's).
// Requests to Consul are small (a GET and its headers), so each
// connection's write buffer is 1 KiB instead of 4: 15 MiB less at 5,000
// services.
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
	return cfg
}

const (
	// maxIdleConsulConns bounds the idle connections to one agent only
	// against a runaway: the watcher's queries bound how many there are.
	maxIdleConsulConns    = 1 << 16
	consulWriteBufferSize = 1 << 10
)
