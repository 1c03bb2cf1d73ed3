package listener

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
)

// HTTP2Server is the sidecar's lean HTTP/2 server (h2Server) for a
// caller that accepts connections itself: the control plane serves its
// xDS port with it (controlplane/leanxds.go). Each connection's frames
// are read on one goroutine and each stream runs its handler on a
// worker, so a client with one long-lived stream costs two goroutines,
// where grpc-go's server runs four (reader, writer, keepalive and
// handler); one, when the handler detaches the stream (Detacher), and a
// small one while it has nothing to read when idle readers park
// (ParkIdleReaders).
type HTTP2Server struct{ s *h2Server }

// HTTP2Options configures an HTTP2Server. Zero fields take the defaults
// of the sidecar's listeners (Go's server's).
type HTTP2Options struct {
	Logger *slog.Logger
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS.
	MaxConcurrentStreams uint32
	// StreamWindow and ConnWindow are the initial receive windows.
	StreamWindow, ConnWindow uint32
	// KeepaliveInterval sends a PING on a connection silent that long,
	// and KeepaliveTimeout closes it when the PING is not answered in
	// time; zero sends none.
	KeepaliveInterval, KeepaliveTimeout time.Duration
	// ReadBufferSize is each connection's read buffer, held for its
	// life; 0: the listeners' 4 KiB. A frame larger than the buffer is
	// read into the frame directly.
	ReadBufferSize int
	// ParkIdleReaders makes the reader of a TCP connection that has
	// nothing to read hand over to a new goroutine that only waits for
	// it to have something, and end: a server of many mostly idle
	// connections then holds a small stack for each instead of the one
	// its reader grew handling frames. Each wake starts a goroutine.
	// Serve connections with Go for it to pay: ServeConn's caller waits
	// for the connection's end.
	ParkIdleReaders bool
}

// NewHTTP2Server returns a server of h.
func NewHTTP2Server(h http.Handler, o HTTP2Options) *HTTP2Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg := &config.HTTP{}
	cfg.HTTP2.MaxConcurrentStreams = o.MaxConcurrentStreams
	cfg.HTTP2.InitialStreamWindowSize = o.StreamWindow
	cfg.HTTP2.InitialConnectionWindowSize = o.ConnWindow
	cfg.HTTP2.KeepaliveInterval = o.KeepaliveInterval
	cfg.HTTP2.KeepaliveTimeout = o.KeepaliveTimeout
	keep := func(ctx context.Context, _ *connInfo) context.Context { return ctx }
	s := newH2Server(o.Logger, h, &http.Server{}, context.Background(), cfg, keep)
	s.readBuffer = o.ReadBufferSize
	s.parkIdle = o.ParkIdleReaders
	return &HTTP2Server{s: s}
}

// ServeConn serves conn, which must start with the HTTP/2 client
// preface (prior knowledge, as gRPC's clients send it), until it ends.
// It returns once every handler of the connection has returned.
func (s *HTTP2Server) ServeConn(conn net.Conn) {
	ended := make(chan struct{})
	s.s.serve(&connInfo{raw: conn, conn: conn}, conn, func() { close(ended) })
	<-ended
}

// Go serves conn as ServeConn does, on goroutines of the server's: it
// returns at once, and done is called once the connection has ended and
// every handler of it has returned.
func (s *HTTP2Server) Go(conn net.Conn, done func()) {
	go s.s.serve(&connInfo{raw: conn, conn: conn}, conn, done)
}

// Drain sends GOAWAY on every connection: each serves the streams it has
// and closes after the last.
func (s *HTTP2Server) Drain() { s.s.drain() }

// CloseAll closes every connection at once.
func (s *HTTP2Server) CloseAll() { s.s.closeAll() }

// Detacher is implemented by the ResponseWriter an HTTP2Server's handler
// is given. A handler that calls Detach may return and leave its stream
// open: the response may be written from other goroutines (one at a
// time) until end is called, which ends the stream as the handler's
// return would have (its trailers), or resets it (RST_STREAM
// INTERNAL_ERROR) when abort. end may be called from any goroutine;
// only the first call counts. The connection's ServeConn returns only
// once every detached stream has ended; a stream the client resets, or
// whose connection ends, still waits for end, and its body reports the
// error.
//
// A long-lived stream that waits for its client most of the time (an xDS
// stream) then holds no goroutine while it waits: its body's ReadyNotifier
// says when there is something to read.
type Detacher interface {
	Detach() (end func(abort bool))
}

// ReadyNotifier is implemented by the request body an HTTP2Server's
// handler is given.
type ReadyNotifier interface {
	// Ready reports how many bytes a Read would give without blocking,
	// and whether the body has ended (its END_STREAM, or an error).
	Ready() (n int, ended bool)
	// OnReady has f called whenever the body has more to give: data, its
	// end, or the error that ends it. f is called from the connection's
	// reading goroutine, or the one that resets the stream, and must not
	// block. What arrived before OnReady is not reported: check Ready.
	OnReady(f func())
}

var _ ReadyNotifier = (*h2sStream)(nil)

// OnReady has f called, from whichever goroutine receives, whenever the
// body has more to give than before: data, its end, or the error that
// ends it. f must not block. A body that has something already is not
// reported again: the caller checks Ready after OnReady.
func (st *h2sStream) OnReady(f func()) { st.notify.Store(&f) }

// notifyReady calls the OnReady function, if any. Callers hold no lock.
func (st *h2sStream) notifyReady() {
	if f := st.notify.Load(); f != nil {
		(*f)()
	}
}
