package cluster

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/weft-mesh/weft/proxy/internal/rawio"
)

// AcquireRequest counts a request in flight to the cluster; it reports
// false, counting nothing, when max_requests is reached.
func (c *Cluster) AcquireRequest() bool {
	limit := int64(c.state.Load().limits.MaxRequests)
	if c.requests.Add(1) > limit {
		c.requests.Add(-1)
		return false
	}
	return true
}

// ReleaseRequest ends a request counted by AcquireRequest.
func (c *Cluster) ReleaseRequest() { c.requests.Add(-1) }

// CanRetry reports whether the retry budget (or, without one,
// max_retries) allows one more retry in flight: with a budget, retries in
// flight may be at most max(min_retry_concurrency, budget_percent ×
// (requests in flight + pending)). As in Envoy, the check and the count
// (StartRetry) are separate steps: a retry waits out its back-off in
// between, and is counted only while it is in flight to the cluster.
func (c *Cluster) CanRetry() bool {
	lim := c.state.Load().limits
	limit := int64(lim.MaxRetries)
	if b := lim.RetryBudget; b != nil {
		active := float64(c.requests.Load() + c.pending.Load())
		limit = max(int64(b.MinConcurrency), int64(b.Percent*active/100))
	}
	return c.retries.Load() < limit
}

// StartRetry counts a retry in flight; EndRetry ends it.
func (c *Cluster) StartRetry() { c.retries.Add(1) }

// EndRetry ends a retry counted by StartRetry.
func (c *Cluster) EndRetry() { c.retries.Add(-1) }

// dialLimited dials a raw connection within max_connections. wait says
// what to do at the limit: HTTP requests wait as pending (at most
// max_pending_requests of them, each at most the connect timeout);
// TCP connections fail at once. Either way ErrOverflow reports the limit.
func (c *Cluster) dialLimited(ctx context.Context, st *state, addr string, wait bool) (net.Conn, error) {
	slots := st.slots
	select {
	case slots <- struct{}{}:
	default:
		if !wait {
			return nil, ErrOverflow
		}
		if err := c.waitForSlot(ctx, st); err != nil {
			return nil, err
		}
	}
	d := net.Dialer{Timeout: st.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		<-slots
		return nil, err
	}
	if c.rawIO {
		conn = rawio.Wrap(conn)
	}
	return &slotConn{Conn: conn, slots: slots}, nil
}

// waitForSlot waits, as a pending request, for a connection to close.
func (c *Cluster) waitForSlot(ctx context.Context, st *state) error {
	if c.pending.Add(1) > int64(st.limits.MaxPendingRequests) {
		c.pending.Add(-1)
		return ErrOverflow
	}
	defer c.pending.Add(-1)
	// Idle pooled connections hold slots too: free them for this host.
	st.upstream.closeIdle(false)
	timer := time.NewTimer(st.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case st.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrOverflow
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slotConn gives its connection slot back when closed.
type slotConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}

// CloseWrite half-closes a TCP connection.
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
