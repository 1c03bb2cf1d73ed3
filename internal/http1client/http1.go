package http1client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// Client is an HTTP/1.1 client (an http.RoundTripper) that runs one
// exchange end to end on the caller's goroutine. It takes an idle
// connection of the host (or dials one), writes the request, reads the
// response header and hands back a body that reads straight from the
// connection and returns it to the pool at its end. http.Transport
// instead hands every request and response between the caller and two
// goroutines per connection (its read and write loops), with channels,
// contexts and locks on the way: on a sidecar's hot path that hand-off
// cost more than the parsing, and a control plane holding thousands of
// Consul blocking queries paid two goroutines for each.
//
// The wire format is net/http's own: the request is written as
// http.Request.Write writes it (requestWriter, without its allocations)
// and the response read as http.ReadResponse reads it (readResponse,
// which parses common responses itself), the calls http.Transport makes,
// so what the server sees is byte for byte what http.Transport sends
// (http1_test.go checks it), and a response means what it means to
// http.Transport. Like any http.RoundTripper it adds no header of its
// own: no Accept-Encoding, so responses come uncompressed.
//
// Requests that need a concurrent writer go to the fallback transport:
// bodies of unknown or large size (the server may answer before reading
// them), Expect: 100-continue and protocol upgrades.
type Client struct {
	dial        func(ctx context.Context, addr string) (net.Conn, error)
	idleTimeout time.Duration
	maxIdle     int
	fallback    func() *http.Transport
	readBuffer  int
	writeBuffer int

	pools  sync.Map // host address → *hostPool
	closed atomic.Bool
}

var _ http.RoundTripper = (*Client)(nil)

// Options configure a Client.
type Options struct {
	// Dial opens a connection to a host address (host:port). It may
	// return any net.Conn: TLS, or a connection with limits of its own.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// IdleTimeout is how long a pooled connection may stay idle before
	// it is closed; zero means no limit, as http.Transport's
	// IdleConnTimeout.
	IdleTimeout time.Duration
	// MaxIdlePerHost bounds the idle connections kept per host; more
	// are closed as their exchanges end.
	MaxIdlePerHost int
	// Fallback returns the transport of the requests the client does
	// not send itself (see Client).
	Fallback func() *http.Transport
	// ReadBufferSize and WriteBufferSize are the sizes of each
	// connection's buffers; 4 KiB when zero, as http.Transport's.
	ReadBufferSize, WriteBufferSize int
}

const (
	// MaxInlineBody is the largest request body written before the
	// response is read; larger ones go to the fallback transport.
	MaxInlineBody = 64 << 10
	// MaxResponseHeaderBytes bounds a response's header block, as
	// http.Transport's default MaxResponseHeaderBytes does.
	MaxResponseHeaderBytes = 1 << 20
	// Max1xxResponses bounds the informational responses before the
	// final one, as http.Transport does.
	Max1xxResponses = 5

	defaultBufferSize = 4 << 10
)

// ErrClosed is returned for requests after CloseIdle retired a client
// for good.
var ErrClosed = errors.New("http1: client closed")

// New returns a client with options o.
func New(o Options) *Client {
	c := &Client{dial: o.Dial, idleTimeout: o.IdleTimeout, maxIdle: o.MaxIdlePerHost, fallback: o.Fallback,
		readBuffer: o.ReadBufferSize, writeBuffer: o.WriteBufferSize}
	if c.idleTimeout <= 0 {
		c.idleTimeout = math.MaxInt64
	}
	if c.readBuffer <= 0 {
		c.readBuffer = defaultBufferSize
	}
	if c.writeBuffer <= 0 {
		c.writeBuffer = defaultBufferSize
	}
	return c
}

// RoundTrip sends req to req.URL.Host and returns the response. The
// response body must be read to its end or closed; its end returns the
// connection to the pool.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if !inlineable(req) {
		return c.fallback().RoundTrip(req)
	}
	pool := c.pool(req.URL.Host)
	for {
		pc, reused, err := pool.get(req.Context(), c)
		if err != nil {
			return nil, err
		}
		resp, err := pc.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the upstream closed while idle fails
		// before a byte of response arrives; send again on a fresh
		// connection when the request can be sent twice, as
		// http.Transport does.
		if !reused || pc.gotResponseBytes() || !replayable(req) || req.Context().Err() != nil {
			return nil, err
		}
	}
}

// inlineable reports whether req can be written before its response is
// read, without a concurrent writer.
func inlineable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > MaxInlineBody) {
		return false
	}
	if len(req.TransferEncoding) > 0 || req.Header.Get("Expect") != "" || req.Header.Get("Upgrade") != "" {
		return false
	}
	return req.Method != http.MethodConnect
}

// replayable reports whether req may be sent again after a failure that
// left no trace of a response: without a body, or with one GetBody can
// produce again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func (c *Client) pool(addr string) *hostPool {
	if p, ok := c.pools.Load(addr); ok {
		return p.(*hostPool)
	}
	p, _ := c.pools.LoadOrStore(addr, &hostPool{addr: addr, idle: make(chan *http1Conn, c.maxIdle)})
	return p.(*hostPool)
}

// CloseIdle closes every idle connection. With retire, the client also
// stops pooling: connections in use close when their exchange ends, and
// new requests fail with ErrClosed.
func (c *Client) CloseIdle(retire bool) {
	if retire {
		c.closed.Store(true)
	}
	c.pools.Range(func(_, v any) bool {
		v.(*hostPool).closeIdle(0)
		return true
	})
}

// hostPool holds the idle connections to one host address, most recently
// used last out first. The buffered channel is the pool: getting and
// putting never block and take no lock of ours.
type hostPool struct {
	addr string
	idle chan *http1Conn
	// sweeping is set while a timer is armed to close connections idle
	// for longer than the idle timeout.
	sweeping atomic.Bool
}

// get returns an idle connection that has not been idle for too long, or
// dials a new one.
func (p *hostPool) get(ctx context.Context, c *Client) (pc *http1Conn, reused bool, err error) {
	for {
		select {
		case pc = <-p.idle:
			if time.Since(pc.idleSince) < c.idleTimeout {
				return pc, true, nil
			}
			pc.close()
			continue
		default:
		}
		break
	}
	if c.closed.Load() {
		return nil, false, ErrClosed
	}
	conn, err := c.dial(ctx, p.addr)
	if err != nil {
		return nil, false, err
	}
	return newHTTP1Conn(conn, p, c), false, nil
}

// put returns pc to the pool, or closes it when the pool is full or the
// client retired.
func (p *hostPool) put(pc *http1Conn) {
	if pc.client.closed.Load() {
		pc.close()
		return
	}
	pc.idleSince = time.Now()
	select {
	case p.idle <- pc:
		p.sweepLater(pc.client.idleTimeout)
	default:
		pc.close()
	}
}

// sweepLater arms a timer, unless one is armed, that closes connections
// idle for longer than timeout, so that upstreams' closed connections
// do not linger in the pool of a host that gets no more requests.
func (p *hostPool) sweepLater(timeout time.Duration) {
	if !p.sweeping.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(timeout, func() {
		p.sweeping.Store(false)
		if p.closeIdle(timeout) > 0 {
			p.sweepLater(timeout)
		}
	})
}

// closeIdle closes the pooled connections idle for at least minIdle and
// puts the others back; it returns how many it kept.
func (p *hostPool) closeIdle(minIdle time.Duration) int {
	var keep []*http1Conn
	for {
		select {
		case pc := <-p.idle:
			if minIdle > 0 && time.Since(pc.idleSince) < minIdle {
				keep = append(keep, pc)
			} else {
				pc.close()
			}
			continue
		default:
		}
		break
	}
	for _, pc := range keep {
		select {
		case p.idle <- pc:
		default:
			pc.close()
		}
	}
	return len(keep)
}

// http1Conn is one upstream connection. One exchange uses it at a time:
// from get until its response body ends.
type http1Conn struct {
	conn      net.Conn
	lr        limitedConn
	br        *bufio.Reader
	bw        *bufio.Writer
	pool      *hostPool
	client    *Client
	idleSince time.Time
	w         requestWriter
	// interrupt interrupts every blocked read and write (a method value
	// made once, so that arming it per exchange does not allocate it).
	interrupt func()
}

func newHTTP1Conn(conn net.Conn, pool *hostPool, client *Client) *http1Conn {
	pc := &http1Conn{conn: conn, pool: pool, client: client}
	pc.lr.conn = conn
	pc.br = bufio.NewReaderSize(&pc.lr, client.readBuffer)
	pc.bw = bufio.NewWriterSize(conn, client.writeBuffer)
	pc.interrupt = pc.interruptNow
	return pc
}

func (pc *http1Conn) interruptNow() { pc.conn.SetDeadline(aLongTimeAgo) }

func (pc *http1Conn) close() { pc.conn.Close() }

func (pc *http1Conn) gotResponseBytes() bool { return pc.lr.read > 0 }

// aLongTimeAgo is a deadline in the past: setting it interrupts every
// blocked read and write on the connection.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads its response header. The request's
// context interrupts it at any point, through the connection's deadline;
// once it has interrupted, the connection is not reused.
func (pc *http1Conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, pc.interrupt)
	pc.lr.read = 0
	resp, err := pc.exchange(req)
	if err != nil {
		stop()
		pc.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if !bodyless(req, resp) {
		resp.Body = &http1Body{pc: pc, body: resp.Body, ctx: ctx, stop: stop, reusable: !resp.Close && !req.Close}
		return resp, nil
	}
	// Nothing more to read: the connection is free now.
	resp.Body = http.NoBody
	if stop() && !resp.Close && !req.Close {
		pc.pool.put(pc)
	} else {
		pc.close()
	}
	return resp, nil
}

// exchange writes req and reads responses until a final one, relaying
// informational ones to the request's client trace.
func (pc *http1Conn) exchange(req *http.Request) (*http.Response, error) {
	if err := pc.w.write(pc.bw, req); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	trace := httptrace.ContextClientTrace(req.Context())
	for n := 0; ; n++ {
		pc.lr.limit = MaxResponseHeaderBytes
		resp, err := readResponse(pc.br, req)
		pc.lr.limit = -1
		if err != nil {
			if errors.Is(err, errHeaderTooLarge) {
				return nil, fmt.Errorf("read response: header larger than %d bytes", MaxResponseHeaderBytes)
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read response: %w", err)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n == Max1xxResponses {
			return nil, fmt.Errorf("read response: more than %d informational responses", Max1xxResponses)
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// bodyless reports whether resp has no body to read: HEAD, 1xx, 204 and
// 304 responses, and an empty fixed-length body.
func bodyless(req *http.Request, resp *http.Response) bool {
	return req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0
}

// http1Body is a response body read from its connection. At its end the
// connection goes back to the pool; closed before its end, the
// connection is closed, as the rest of the response cannot be skipped
// cheaply.
type http1Body struct {
	pc       *http1Conn
	body     io.ReadCloser
	ctx      context.Context // the request's: its end interrupts reads
	stop     func() bool
	reusable bool
	done     bool
}

func (b *http1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
		if ctxErr := b.ctx.Err(); ctxErr != nil {
			err = ctxErr // the read failed on the deadline the context's end set
		}
	}
	return n, err
}

func (b *http1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *http1Body) finish(complete bool) {
	b.done = true
	if b.stop() && complete && b.reusable && b.pc.br.Buffered() == 0 {
		b.pc.pool.put(b.pc)
		return
	}
	b.pc.close()
}

// limitedConn counts the bytes read from conn and, while limit is not
// negative, fails a read once limit bytes were read.
type limitedConn struct {
	conn  net.Conn
	limit int64
	read  int64
}

var errHeaderTooLarge = errors.New("response header too large")

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.limit == 0 {
		return 0, errHeaderTooLarge
	}
	if l.limit > 0 && int64(len(p)) > l.limit {
		p = p[:l.limit]
	}
	n, err := l.conn.Read(p)
	l.read += int64(n)
	if l.limit > 0 {
		l.limit -= int64(n)
	}
	return n, err
}
