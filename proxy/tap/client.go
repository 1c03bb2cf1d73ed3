package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
	"github.com/weft-mesh/weft/internal/backoff"
)

// ClientOptions configure the sidecar's tap stream.
type ClientOptions struct {
	// Conn, when set, returns the connection to open the stream on (the
	// certificate service's, so the control plane holds no connection
	// more per sidecar) and a function to call when it failed; Run does
	// not close it. Otherwise Run dials Addrs in turn.
	Conn func() (*grpc.ClientConn, func(), error)
	// Addrs are the control plane's xDS addresses, tried in turn.
	Addrs       []string
	DialOptions []grpc.DialOption // default: plaintext, as the xDS client
	ProxyID     string
	// Token returns the Consul ACL token sent as x-consul-token (optional).
	Token func() (string, error)
	// Backoff paces reconnections (default 1 s doubling to 30 s).
	Backoff backoff.Policy
	Logger  *slog.Logger
}

// batchSize bounds the events of one message.
const batchSize = 256

// Run keeps the sidecar's tap stream open until ctx ends: it connects to
// each address in turn, runs the taps the control plane starts, and sends
// their events. When the stream ends, every tap stops. A control plane
// without the tap service is retried at the backoff's pace and costs
// nothing else.
func (h *Hub) Run(ctx context.Context, opts ClientOptions) {
	if len(opts.DialOptions) == 0 {
		opts.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if opts.Backoff.Base == 0 {
		opts.Backoff = backoff.Policy{Base: time.Second, Max: 30 * time.Second, Jitter: 0.2}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "tap")
	for attempt, i := 0, 0; ctx.Err() == nil; i = (i + 1) % max(len(opts.Addrs), 1) {
		var err error
		switch {
		case opts.Conn != nil:
			var cc *grpc.ClientConn
			var failed func()
			if cc, failed, err = opts.Conn(); err == nil {
				if err = h.stream(ctx, opts, cc); err != nil && ctx.Err() == nil {
					failed()
				}
			}
		case len(opts.Addrs) == 0:
			return
		default:
			err = h.dialAndStream(ctx, opts, opts.Addrs[i])
		}
		h.StopAll()
		if ctx.Err() != nil {
			return
		}
		log.Debug("tap stream ended", "error", err)
		if !backoff.Sleep(ctx, opts.Backoff.Delay(attempt)) {
			return
		}
		attempt++
	}
}

// dialAndStream runs one tap stream on a connection of its own to addr.
func (h *Hub) dialAndStream(ctx context.Context, opts ClientOptions, addr string) error {
	cc, err := grpc.NewClient(addr, opts.DialOptions...)
	if err != nil {
		return err
	}
	defer cc.Close()
	return h.stream(ctx, opts, cc)
}

// stream runs one tap stream on cc until it fails or ctx ends.
func (h *Hub) stream(ctx context.Context, opts ClientOptions, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Token != nil {
		token, err := opts.Token()
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-consul-token", token)
		}
	}
	s, err := tapv1.NewTapServiceClient(cc).Stream(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&tapv1.SidecarMessage{ProxyId: opts.ProxyID}); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			c, err := s.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if c.GetStop() {
				h.Stop(c.GetTapId())
			} else {
				h.Start(c)
			}
		}
	}()
	for {
		select {
		case ev := <-h.queue:
			msg := &tapv1.SidecarMessage{Events: []*tapv1.TapEvent{ev}}
		fill:
			for len(msg.Events) < batchSize {
				select {
				case ev := <-h.queue:
					msg.Events = append(msg.Events, ev)
				default:
					break fill
				}
			}
			msg.Dropped = h.takeDropped()
			if err := s.Send(msg); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
