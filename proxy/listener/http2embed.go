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
// are read on the goroutine that calls ServeConn and each stream runs
// its handler on a worker, so a client with one long-lived stream costs
// two goroutines, where grpc-go's server runs four (reader, writer,
// keepalive and handler).
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
	return &HTTP2Server{s: s}
}

// ServeConn serves conn, which must start with the HTTP/2 client
// preface (prior knowledge, as gRPC's clients send it), until it ends.
// It returns once every handler of the connection has returned.
func (s *HTTP2Server) ServeConn(conn net.Conn) {
	s.s.serve(&connInfo{raw: conn, conn: conn}, conn)
}

// Drain sends GOAWAY on every connection: each serves the streams it has
// and closes after the last.
func (s *HTTP2Server) Drain() { s.s.drain() }

// CloseAll closes every connection at once.
func (s *HTTP2Server) CloseAll() { s.s.closeAll() }
