package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/backoff"
)

// Defaults of the Config fields left zero.
const (
	DefaultQueryWait    = 5 * time.Minute
	DefaultDebounce     = 15 * time.Millisecond
	DefaultDebounceMax  = 200 * time.Millisecond
	DefaultResyncGrace  = time.Minute
	DefaultRemovalGrace = 30 * time.Second
	DefaultRemovalShare = 50.0
	DefaultBackoffBase  = 100 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
)

// Config configures a Watcher. Zero durations take the defaults above.
type Config struct {
	// Client talks to the Consul agent. Required.
	Client *api.Client

	// Datacenter to watch; empty means the agent's own, read from
	// /v1/agent/self when Run starts.
	Datacenter string

	// Logger receives the watcher's logs, tagged component=discovery.
	// Nil discards them.
	Logger *slog.Logger

	// QueryWait is the longest a blocking query waits for a change before
	// Consul answers with the unchanged state. Consul caps it at 10 minutes.
	QueryWait time.Duration

	// Debounce is how long the watcher waits after a change for further
	// changes before it publishes a snapshot, so a burst of changes yields
	// one snapshot. DebounceMax bounds the total delay of a change while
	// changes keep arriving.
	Debounce    time.Duration
	DebounceMax time.Duration

	// ResyncGrace is how long, after Consul comes back without its state
	// (its catalog index went backwards), services and instances it no
	// longer lists are kept, so that the mesh does not lose endpoints
	// before Consul's agents have re-registered them (default 60s, about
	// one anti-entropy round; negative turns the protection off).
	ResyncGrace time.Duration

	// RemovalShare and RemovalGrace are the endpoint panic guard: when one
	// Consul answer removes more than RemovalShare percent of a service's
	// instances (default 50) without their checks failing, the removal is
	// held for RemovalGrace (default 30s; negative turns the guard off),
	// then applies. RemovalShare must be above 0 and below 100.
	RemovalShare float64
	RemovalGrace time.Duration

	// BackoffBase and BackoffMax bound the jittered exponential delays
	// between retries of a failing Consul request.
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.QueryWait, DefaultQueryWait)
	def(&c.Debounce, DefaultDebounce)
	def(&c.DebounceMax, max(DefaultDebounceMax, c.Debounce))
	def(&c.ResyncGrace, DefaultResyncGrace)
	def(&c.RemovalGrace, DefaultRemovalGrace)
	if c.RemovalShare == 0 {
		c.RemovalShare = DefaultRemovalShare
	}
	def(&c.BackoffBase, DefaultBackoffBase)
	def(&c.BackoffMax, max(DefaultBackoffMax, c.BackoffBase))
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// retryPolicy paces the retries of a failing Consul request: delays from
// BackoffBase doubling up to BackoffMax, the upper half of each random
// ("equal jitter"), so that delays keep growing while the retries of
// many watches spread out.
func (c Config) retryPolicy() backoff.Policy {
	return backoff.Policy{Base: c.BackoffBase, Max: c.BackoffMax, Jitter: 0.5}
}

// Validate reports the first invalid field of c, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Client == nil {
		return errors.New("discovery: Config.Client is required")
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"QueryWait", c.QueryWait},
		{"Debounce", c.Debounce},
		{"DebounceMax", c.DebounceMax},
		{"BackoffBase", c.BackoffBase},
		{"BackoffMax", c.BackoffMax},
	} {
		if d.value < 0 {
			return fmt.Errorf("discovery: Config.%s is negative: %v", d.name, d.value)
		}
	}
	if c.RemovalShare <= 0 || c.RemovalShare >= 100 {
		return fmt.Errorf("discovery: Config.RemovalShare %v is not a percentage above 0 and below 100", c.RemovalShare)
	}
	if c.DebounceMax < c.Debounce {
		return fmt.Errorf("discovery: Config.DebounceMax (%v) is less than Debounce (%v)", c.DebounceMax, c.Debounce)
	}
	if c.BackoffMax < c.BackoffBase {
		return fmt.Errorf("discovery: Config.BackoffMax (%v) is less than BackoffBase (%v)", c.BackoffMax, c.BackoffBase)
	}
	return nil
}
