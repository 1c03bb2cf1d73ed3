package controlplane

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/workpool"
	"github.com/weft-mesh/weft/proxy/grpcwire"
	"github.com/weft-mesh/weft/proxy/listener"
)

// The xDS server's transports (Config.XDSServer).
const (
	// XDSServerLean serves delta ADS streams on the sidecar's lean
	// HTTP/2 server, and every other method through grpc-go's
	// ServeHTTP on the same connections.
	XDSServerLean = "lean"
	// XDSServerGRPC serves every method with grpc-go's own server.
	XDSServerGRPC = "grpc"
)

// deltaADSMethod is the path of delta ADS streams.
const deltaADSMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

// maxRecvMessage bounds a request message, as grpc-go's server does by
// default (4 MiB).
const maxRecvMessage = 4 << 20

// leanXDS serves the xDS port with the sidecar's lean HTTP/2 server
// (listener.HTTP2Server). A sidecar holds one connection and one delta
// ADS stream for its life; grpc-go's server gives each connection a
// reader, a writer and a keepalive goroutine and each stream a handler
// goroutine, and hands every frame between them. Here a connection's
// frames are read on the goroutine that accepted it, a delta stream's
// requests are handled by a pooled worker when they arrive (its handler
// has returned: detachedDelta), and the publisher's sends write their
// frames themselves (group commit). Other methods (SotW ADS, the
// certificate, tap and trace services) are served on the same
// connections by grpc-go's ServeHTTP, with the same interceptors.
type leanXDS struct {
	srv       *Server
	grpc      *grpc.Server
	h2        *listener.HTTP2Server
	receivers *workpool.Pool[*detachedDelta]
	conns     sync.WaitGroup
	closed    chan struct{}
}

func newLeanXDS(s *Server, g *grpc.Server) *leanXDS {
	l := &leanXDS{srv: s, grpc: g, closed: make(chan struct{})}
	l.receivers = workpool.New((*detachedDelta).receive, maxIdleReceivers, receiverIdleTimeout, l.closed)
	l.h2 = listener.NewHTTP2Server(http.HandlerFunc(l.serveHTTP), listener.HTTP2Options{
		Logger:               s.cfg.Logger.With("component", "xds"),
		MaxConcurrentStreams: xdsMaxStreams,
		StreamWindow:         64 << 10,
		ConnWindow:           64 << 10,
		KeepaliveInterval:    xdsKeepalive.Time,
		KeepaliveTimeout:     xdsKeepalive.Timeout,
		// xDS requests are small (an ACK is a few hundred bytes); the
		// buffer is held by every connected sidecar.
		ReadBufferSize: 1 << 10,
		// A sidecar's connection is idle between pushes and ACKs.
		ParkIdleReaders: true,
	})
	return l
}

// serve accepts connections from l until it is closed, then waits for
// the connections it accepted to end.
func (l *leanXDS) serve(lis net.Listener) error {
	defer l.conns.Wait()
	for {
		c, err := lis.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		setUserTimeout(c, xdsKeepalive.Timeout)
		addr := c.RemoteAddr().String()
		l.srv.stalls.served(addr)
		l.conns.Add(1)
		l.h2.Go(c, func() {
			l.srv.stalls.forget(addr)
			l.conns.Done()
		})
	}
}

// setUserTimeout makes d the connection's TCP_USER_TIMEOUT, as grpc-go
// does with its keepalive wait: the kernel resets a connection whose sent
// data stays unacknowledged that long, as when the client stops reading.
func setUserTimeout(c net.Conn, d time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
}

// stop sends GOAWAY on every connection; the streams still open after
// that are ended by closing their connections (deltaServer.endAll).
func (l *leanXDS) stop(lis net.Listener) {
	close(l.closed)
	lis.Close()
	l.h2.Drain()
}

func (l *leanXDS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == deltaADSMethod && r.Method == http.MethodPost && grpcwire.IsRequest(r) {
		l.serveDelta(w, r)
		return
	}
	l.grpc.ServeHTTP(w, r)
}

// serveDelta runs one delta ADS stream. The handler returns once the
// stream is open, and the stream holds no goroutine while it waits for
// its client: each request that arrives is received and handled on a
// pooled worker (detachedDelta).
func (l *leanXDS) serveDelta(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", grpcwire.ContentType)
	ctx := r.Context()
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: a})
	}
	ctx = metadata.NewIncomingContext(ctx, incomingMetadata(r.Header))
	hs := &httpDeltaStream{w: w, rc: http.NewResponseController(w), body: r.Body, ctx: ctx, stalls: l.srv.stalls, addr: r.RemoteAddr,
		encoding: r.Header.Get("Grpc-Encoding")}
	detacher, canDetach := w.(listener.Detacher)
	body, notifies := r.Body.(listener.ReadyNotifier)
	if !canDetach || !notifies {
		// A request that ended with its header (no body to wait on).
		endDelta(w, hs, l.srv.delta.serve(hs))
		return
	}
	st, err := l.srv.delta.open(hs)
	if err != nil {
		l.srv.delta.closeStream(st)
		endDelta(w, hs, err)
		return
	}
	d := &detachedDelta{srv: l.srv, receivers: l.receivers, w: w, hs: hs, st: st, body: body, end: detacher.Detach()}
	body.OnReady(d.kick)
	d.kick() // what arrived with the request's header
}

// endDelta ends a delta ADS stream with err's gRPC status: as trailers
// after its messages, or, when none was sent, in the response header
// alone (gRPC's Trailers-Only).
func endDelta(w http.ResponseWriter, hs *httpDeltaStream, err error) {
	sts := status.Convert(err)
	prefix := http.TrailerPrefix
	if !hs.sent {
		prefix = ""
	}
	w.Header().Set(prefix+"Grpc-Status", strconv.Itoa(int(sts.Code())))
	if msg := sts.Message(); msg != "" {
		w.Header().Set(prefix+"Grpc-Message", grpcwire.EncodeMessage(msg))
	}
}

// detachedDelta runs a delta ADS stream whose handler has returned. When
// its body has something to read (kick), a pooled worker receives and
// handles requests until the body has nothing more buffered, then moves
// on; the publisher's responses are sent by the stream's own flush
// goroutines. A sidecar connected and synced thus costs the control plane
// one goroutine, its connection's reader, instead of two.
type detachedDelta struct {
	srv       *Server
	receivers *workpool.Pool[*detachedDelta]
	w         http.ResponseWriter
	hs        *httpDeltaStream
	st        *deltaServerStream
	body      listener.ReadyNotifier
	end       func(abort bool)

	mu      sync.Mutex
	running bool // a goroutine is receiving
	kicked  bool // the body reported more while it was
	done    bool // the stream ended
}

// kick has a receiver receive, unless one is; it is called by the
// connection's reader and must not block.
func (d *detachedDelta) kick() {
	d.mu.Lock()
	if d.done || d.running {
		d.kicked = true
		d.mu.Unlock()
		return
	}
	d.running = true
	d.mu.Unlock()
	d.receivers.Go(d)
}

// receive handles the requests buffered, and ends the stream when its
// body ends or a request fails.
func (d *detachedDelta) receive() {
	defer d.recoverPanic()
	for {
		d.mu.Lock()
		d.kicked = false
		d.mu.Unlock()
		if n, ended := d.body.Ready(); n == 0 && !ended {
			d.mu.Lock()
			idle := !d.kicked
			d.running = !idle
			d.mu.Unlock()
			if idle {
				return
			}
			continue
		}
		// A message partly arrived is waited for here.
		req, err := d.hs.Recv()
		if err != nil {
			d.finish(d.st.ended(err))
			return
		}
		if err := d.st.handle(req); err != nil {
			d.finish(err)
			return
		}
	}
}

// Detached streams receive on workers that keep their stacks from one
// request to the next (workpool): a goroutine per request would grow a
// stack afresh for each of the ACKs a mesh-wide push brings, one per
// sidecar.
const (
	// maxIdleReceivers bounds the workers kept waiting.
	maxIdleReceivers = 64
	// receiverIdleTimeout is how long a worker waits for a stream.
	receiverIdleTimeout = 5 * time.Second
)

// finish closes the stream and ends it with err's status.
func (d *detachedDelta) finish(err error) {
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
	d.srv.delta.closeStream(d.st)
	endDelta(d.w, d.hs, err)
	d.end(false)
}

// recoverPanic resets a stream whose request handling panicked, as the
// HTTP/2 server does when a handler panics.
func (d *detachedDelta) recoverPanic() {
	e := recover()
	if e == nil {
		return
	}
	buf := make([]byte, 16<<10)
	buf = buf[:runtime.Stack(buf, false)]
	d.srv.cfg.Logger.Error("delta ADS stream panicked", "component", "xds", "remote", d.hs.addr, "panic", e, "stack", string(buf))
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
	d.srv.delta.closeStream(d.st)
	d.end(true)
}

// incomingMetadata is a request header as gRPC metadata: lower-case
// names, without HTTP/2's and gRPC's own fields.
func incomingMetadata(h http.Header) metadata.MD {
	md := metadata.MD{}
	for k, vv := range h {
		k = strings.ToLower(k)
		switch k {
		case "content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding":
			continue
		}
		md[k] = vv
	}
	return md
}

// httpDeltaStream is a delta ADS stream over an HTTP/2 request and its
// response: length-prefixed protobuf messages, as gRPC frames them.
// Recv is called by the handler's goroutine only; Send by one goroutine
// at a time (deltaServerStream.sendMu), which may be another.
type httpDeltaStream struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	body   io.Reader
	ctx    context.Context
	stalls *stallGuard
	addr   string
	// encoding is the request's grpc-encoding: how its messages flagged
	// compressed are compressed.
	encoding string
	sent     bool // a message was written (the response header with it)
	prefix   [5]byte
}

var _ discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer = (*httpDeltaStream)(nil)

// Recv reads the next request; io.EOF when the client closed its side.
func (s *httpDeltaStream) Recv() (*discoveryv3.DeltaDiscoveryRequest, error) {
	if _, err := io.ReadFull(s.body, s.prefix[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, status.Error(codes.Internal, "grpc: request message cut short")
		}
		return nil, err
	}
	compressed := s.prefix[0] == 1
	if s.prefix[0] > 1 {
		return nil, status.Errorf(codes.Internal, "grpc: invalid message flags %#x", s.prefix[0])
	}
	if compressed && s.encoding != "gzip" {
		return nil, status.Errorf(codes.Unimplemented, "grpc: request compressed with %q, which is not supported (gzip is)", s.encoding)
	}
	n := binary.BigEndian.Uint32(s.prefix[1:])
	if n > maxRecvMessage {
		return nil, status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, maxRecvMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s.body, b); err != nil {
		return nil, status.Error(codes.Internal, "grpc: request message cut short")
	}
	if compressed {
		var err error
		if b, err = gunzip(b); err != nil {
			return nil, err
		}
	}
	req := &discoveryv3.DeltaDiscoveryRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return req, nil
}

// gunzip decompresses a gzip-compressed message, of at most
// maxRecvMessage bytes once decompressed.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: failed to decompress the received message: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxRecvMessage+1))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: failed to decompress the received message: %v", err)
	}
	if len(out) > maxRecvMessage {
		return nil, status.Errorf(codes.ResourceExhausted, "grpc: received message after decompression larger than max %d", maxRecvMessage)
	}
	return out, nil
}

// sendBuffers holds the buffers responses are framed in: a stream holds
// one only while it sends.
var sendBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Send writes m and flushes it. A send that waits longer than the stall
// limit for the client to read closes the client's connection, which
// ends the send with an error (stallGuard).
func (s *httpDeltaStream) Send(m *discoveryv3.DeltaDiscoveryResponse) error {
	bp := sendBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			sendBuffers.Put(bp)
		}
	}()
	b, err := proto.MarshalOptions{}.MarshalAppend(append((*bp)[:0], 0, 0, 0, 0, 0), m)
	if err != nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	*bp = b[:0]
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	s.sent = true
	t := time.AfterFunc(s.stalls.limit, func() { s.stalls.disconnect(s.addr, deltaADSMethod) })
	defer t.Stop()
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// The rest of grpc.ServerStream: delta ADS sends no header or trailer
// metadata of its own.
func (s *httpDeltaStream) SetHeader(metadata.MD) error  { return nil }
func (s *httpDeltaStream) SendHeader(metadata.MD) error { return nil }
func (s *httpDeltaStream) SetTrailer(metadata.MD)       {}
func (s *httpDeltaStream) Context() context.Context     { return s.ctx }

func (s *httpDeltaStream) SendMsg(m any) error {
	resp, ok := m.(*discoveryv3.DeltaDiscoveryResponse)
	if !ok {
		return status.Errorf(codes.Internal, "grpc: cannot send %T on a delta ADS stream", m)
	}
	return s.Send(resp)
}

func (s *httpDeltaStream) RecvMsg(m any) error {
	req, ok := m.(*discoveryv3.DeltaDiscoveryRequest)
	if !ok {
		return status.Errorf(codes.Internal, "grpc: cannot receive %T on a delta ADS stream", m)
	}
	got, err := s.Recv()
	if err != nil {
		return err
	}
	proto.Reset(req)
	proto.Merge(req, got)
	return nil
}
