// Package xds is weft-proxy's xDS client: one ADS stream (Envoy v3) to a
// management server, incremental (delta) or state of the world.
//
// The client subscribes to all listeners and clusters (wildcard), and to
// the route configurations, load assignments and secrets (SDS) that the
// applied configuration names. Every response is decoded, validated and handed,
// together with the accepted resources of the other types, to an Applier;
// the response is ACKed when the Applier accepts it and NACKed, keeping the
// previous configuration, when it does not. When the management server goes
// away the client keeps the last accepted configuration, reconnects with
// backoff (failing over between servers) and re-sends its subscriptions
// with the versions it last ACKed.
package xds

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-mesh/weft/internal/backoff"
)

// Applier validates and installs a candidate State. It returns the route
// and endpoint names the new configuration depends on, or an error naming
// the bad resource, in which case the response is NACKed and the previous
// configuration must keep serving.
//
// The client calls it from its Run goroutine, one call at a time. It must
// not modify the State.
type Applier func(State) (Subscriptions, error)

// Options configure a Client.
type Options struct {
	// Addrs are management servers ("host:port"), tried in order.
	Addrs []string
	// Node identifies the proxy; Node.Id is required by the server.
	Node *corev3.Node
	// Apply installs configurations. Required.
	Apply Applier
	// Logger receives the client's logs (default slog.Default()).
	Logger *slog.Logger
	// Backoff paces reconnections (default 250ms up to 30s).
	Backoff Backoff
	// NackBackoff paces repeated identical NACKs, so that a management
	// server that re-sends a rejected version does not cause a hot loop
	// (default 500ms up to 5s). The first NACK of a version is immediate.
	NackBackoff Backoff
	// Delta selects incremental (delta) ADS; otherwise the client speaks
	// state-of-the-world ADS.
	Delta bool
	// DialOptions replace the default plaintext transport credentials.
	DialOptions []grpc.DialOption
	// OnAck and OnNack, when set, are called with the type URL of each
	// response accepted or rejected (metrics), on the stream's goroutine;
	// they must not block.
	OnAck, OnNack func(typeURL string)
}

// Client is an ADS client. Create it with New and start it with Run.
type Client struct {
	opts   Options
	log    *slog.Logger
	status statusBoard

	// Written only by the Run goroutine.
	state    atomic.Pointer[State]
	subs     Subscriptions
	versions map[string]map[string]string // delta: resource versions by type URL and name
}

// New returns a Client. It does not connect until Run.
func New(opts Options) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.DialOptions) == 0 {
		opts.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if opts.NackBackoff == (Backoff{}) {
		opts.NackBackoff = Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second}
	}
	c := &Client{opts: opts, log: opts.Logger}
	c.state.Store(&State{})
	return c
}

// State returns the last accepted configuration. Safe for concurrent use.
func (c *Client) State() State { return *c.state.Load() }

// Status returns the connection and ACK/NACK state. Safe for concurrent use.
func (c *Client) Status() Status { return c.status.snapshot() }

// Run keeps an ADS stream open until ctx is cancelled, reconnecting with
// backoff and moving to the next address after every failure. It returns
// nil when ctx is cancelled and an error only for invalid Options.
func (c *Client) Run(ctx context.Context) error {
	if len(c.opts.Addrs) == 0 || c.opts.Apply == nil || c.opts.Node.GetId() == "" {
		return errors.New("xds: Options need Addrs, Apply and Node.Id")
	}
	failures, everAnswered := 0, false
	for i := 0; ; i++ {
		addr := c.opts.Addrs[i%len(c.opts.Addrs)]
		gotResponse, err := c.runStream(ctx, addr)
		c.status.setConnected(addr, false, err)
		if ctx.Err() != nil {
			return nil
		}
		if gotResponse {
			failures, everAnswered = 0, true
		}
		delay := c.opts.Backoff.retryDelay(failures, everAnswered)
		failures++
		c.log.Warn("xDS stream ended; retrying", "server", addr, "error", err, "retry_in", delay)
		if !backoff.Sleep(ctx, delay) {
			return nil
		}
	}
}

// runStream runs one stream to addr until it fails. gotResponse reports
// whether the server sent anything, which resets the backoff.
func (c *Client) runStream(ctx context.Context, addr string) (gotResponse bool, err error) {
	cc, err := grpc.NewClient(addr, c.opts.DialOptions...)
	if err != nil {
		return false, err
	}
	defer cc.Close()
	if c.opts.Delta {
		return newDeltaStream(c, addr).run(ctx, cc)
	}
	return newStream(c, addr).run(ctx, cc)
}
