package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// http2Client is the HTTP/2 upstream client of a cluster. A request is
// written on the caller's goroutine — its HEADERS, and when its body is
// already complete (ready.go), the body and END_STREAM with them, in one
// write — and its response is read by the connection's one reader
// goroutine, which hands frames to the stream they belong to. A body
// still arriving is written by a goroutine of its own, as it must be:
// the response may come before the request ends. http.Transport's
// HTTP/2 client instead runs every request on a goroutine of its own,
// writes and flushes the HEADERS, each DATA frame and END_STREAM
// separately, and hands the response over through channels; on the
// sidecar's gRPC path those writes cost more than the rest of the
// exchange.
//
// Frames are read and written with golang.org/x/net/http2's Framer and
// HPACK codec, which check each frame's shape; this file and its two
// siblings own the connection and stream state (RFC 9113 §5), flow
// control (§5.2, §6.9) and the mapping to http.Request and
// http.Response, which follows http.Transport's (http2_test.go compares
// what an upstream sees and what a caller gets from both).
//
// Requests that need what only http.Transport does go to fallback:
// CONNECT and Expect: 100-continue.
type http2Client struct {
	dial        func(ctx context.Context, addr string) (net.Conn, error)
	idleTimeout time.Duration
	fallback    func() http.RoundTripper

	pools  sync.Map // host address → *h2Pool
	closed atomic.Bool
}

var _ http.RoundTripper = (*http2Client)(nil)

// HTTP/2 client settings.
const (
	// h2StreamWindow and h2ConnWindow are the receive windows the client
	// grants: per stream, and for the connection. The stream window
	// bounds what one response buffers while the downstream reads slowly.
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 16 << 20
	// h2InitialMaxStreams is how many streams a new connection carries
	// before the server's SETTINGS say how many it allows.
	h2InitialMaxStreams = 100
	// h2MaxRetries bounds the sends of a request the server did not
	// process (refused, or above a GOAWAY's last stream).
	h2MaxRetries = 3
)

func newHTTP2Client(dial func(ctx context.Context, addr string) (net.Conn, error), idleTimeout time.Duration, fallback func() http.RoundTripper) *http2Client {
	return &http2Client{dial: dial, idleTimeout: idleTimeout, fallback: fallback}
}

// RoundTrip sends req to req.URL.Host over a pooled HTTP/2 connection and
// returns the response once its header arrives. The body must be read to
// its end or closed. A request the server did not process is sent again,
// on another connection, when its body can be sent twice.
func (c *http2Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodConnect || req.Header.Get("Expect") != "" {
		return c.fallback().RoundTrip(req)
	}
	pool := c.pool(req.URL.Host)
	for sends := 1; ; sends++ {
		cc, err := pool.get(req.Context(), c)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := cc.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, errH2NotProcessed) || sends == h2MaxRetries || req.Context().Err() != nil {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func (c *http2Client) pool(addr string) *h2Pool {
	if p, ok := c.pools.Load(addr); ok {
		return p.(*h2Pool)
	}
	p, _ := c.pools.LoadOrStore(addr, &h2Pool{addr: addr})
	return p.(*h2Pool)
}

// closeIdle closes the connections that carry no stream. With retire,
// the client also stops taking requests, and its other connections
// close when their last stream ends.
func (c *http2Client) closeIdle(retire bool) {
	if retire {
		c.closed.Store(true)
	}
	c.pools.Range(func(_, v any) bool {
		v.(*h2Pool).closeIdle(retire)
		return true
	})
}

// h2Pool holds the connections to one host address. A request takes a
// stream slot on the connection that last had one free (no lock), or
// else, under mu, on any other; when every connection is full, one
// request dials and the others wait for it.
type h2Pool struct {
	addr  string
	last  atomic.Pointer[h2Conn]
	mu    sync.Mutex
	conns []*h2Conn
	dial  *h2Dial // the dial in flight
}

type h2Dial struct {
	done chan struct{}
	err  error
}

// get returns a connection with a stream slot reserved for the caller.
func (p *h2Pool) get(ctx context.Context, c *http2Client) (*h2Conn, error) {
	if cc := p.last.Load(); cc != nil && cc.reserve() {
		return cc, nil
	}
	for {
		if c.closed.Load() {
			return nil, errClientClosed
		}
		p.mu.Lock()
		for _, cc := range p.conns {
			if cc.reserve() {
				p.mu.Unlock()
				p.last.Store(cc)
				return cc, nil
			}
		}
		d := p.dial
		if d == nil {
			d = &h2Dial{done: make(chan struct{})}
			p.dial = d
			p.mu.Unlock()
			d.err = p.dialConn(ctx, c)
			p.mu.Lock()
			p.dial = nil
			p.mu.Unlock()
			close(d.done)
			if d.err != nil {
				return nil, d.err
			}
			continue
		}
		p.mu.Unlock()
		select {
		case <-d.done:
			// The dialer's own cancellation is not the waiters' failure.
			if d.err != nil && !errors.Is(d.err, context.Canceled) && !errors.Is(d.err, context.DeadlineExceeded) {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// dialConn connects, starts the connection and adds it to the pool.
func (p *h2Pool) dialConn(ctx context.Context, c *http2Client) error {
	conn, err := c.dial(ctx, p.addr)
	if err != nil {
		return err
	}
	cc, err := newH2Conn(conn, p, c.idleTimeout)
	if err != nil {
		conn.Close()
		return &net.OpError{Op: "dial", Net: "tcp", Addr: conn.RemoteAddr(), Err: err}
	}
	p.mu.Lock()
	p.conns = append(p.conns, cc)
	p.mu.Unlock()
	return nil
}

// remove forgets cc, which takes no more streams.
func (p *h2Pool) remove(cc *h2Conn) {
	p.last.CompareAndSwap(cc, nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.conns {
		if x == cc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

func (p *h2Pool) closeIdle(retire bool) {
	p.mu.Lock()
	conns := append([]*h2Conn(nil), p.conns...)
	p.mu.Unlock()
	for _, cc := range conns {
		cc.retire(retire)
	}
}
