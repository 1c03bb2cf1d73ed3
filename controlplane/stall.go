package controlplane

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
)

// stallGuard disconnects a client that stops reading its stream. xDS
// clients answer every response (ACK or NACK) at once, and the control
// plane sends a stream nothing more until they do: a client that stops
// reading leaves its last response queued in the server, gRPC's buffers
// and goroutines held for good, and its configuration silently stale. A
// response left unanswered for longer than limit (sweep), or a send of
// any stream blocked that long on the client's flow-control window
// (streamInterceptor), closes the client's connection instead: the client
// sees its streams fail and reconnects (every xDS client does), and the
// stalls are counted. Other streams never wait on a stalled one: each has
// its own goroutine, and the cache answers watches without blocking.
//
// The guard records the connections the gRPC listener accepts, to find a
// stream's connection by its peer address, but hands gRPC each connection
// as accepted (*net.TCPConn): grpc-go then reads it without pinning a
// read buffer per idle connection (its readyreader; a wrapped connection
// would hold a read buffer, xdsReadBufferSize, per connected sidecar).
// gRPC's stats handler tells the guard when a connection's transport
// starts and ends (TagConn, HandleConn); a connection that never became a
// transport (a failed handshake, which gRPC closes itself) is forgotten by
// sweep once it is older than gRPC's handshake timeout.
type stallGuard struct {
	limit  time.Duration
	log    *slog.Logger
	stalls prometheus.Counter

	conns sync.Map // remote address → *guardedConn
}

// handshakeTimeout is grpc-go's default ConnectionTimeout, which the
// control plane keeps: an accepted connection is a transport by then or
// closed.
const handshakeTimeout = 120 * time.Second

var _ stats.Handler = (*stallGuard)(nil)

func newStallGuard(limit time.Duration, log *slog.Logger, reg prometheus.Registerer) *stallGuard {
	g := &stallGuard{limit: limit, log: log, stalls: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weft_cp_xds_send_stalls_total",
		Help: "Client connections closed because a response to them waited longer than --xds-send-timeout for the client to read.",
	})}
	reg.MustRegister(g.stalls)
	return g
}

// listener records the connections l accepts until they close.
func (g *stallGuard) listener(l net.Listener) net.Listener {
	return &guardedListener{Listener: l, g: g}
}

type guardedListener struct {
	net.Listener
	g *stallGuard
}

// Accept returns the connection unwrapped, recorded by its remote address.
func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.g.conns.Store(c.RemoteAddr().String(), &guardedConn{conn: c, accepted: time.Now()})
	return c, nil
}

type guardedConn struct {
	conn      net.Conn
	accepted  time.Time
	transport atomic.Bool // gRPC runs a transport on it (TagConn)
}

type connKey struct{}

// TagConn marks the connection as gRPC's, and remembers its address for
// HandleConn.
func (g *stallGuard) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if info.RemoteAddr == nil {
		return ctx
	}
	addr := info.RemoteAddr.String()
	if v, ok := g.conns.Load(addr); ok {
		v.(*guardedConn).transport.Store(true)
	}
	return context.WithValue(ctx, connKey{}, addr)
}

// HandleConn forgets a connection when its transport ends.
func (g *stallGuard) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, end := s.(*stats.ConnEnd); !end {
		return
	}
	if addr, ok := ctx.Value(connKey{}).(string); ok {
		g.conns.Delete(addr)
	}
}

// TagRPC and HandleRPC: the guard has no use for RPC events.
func (g *stallGuard) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (g *stallGuard) HandleRPC(context.Context, stats.RPCStats)                       {}

// served marks the connection from addr as served (the lean xDS
// server's, which has no stats handler), so that sweep keeps it.
func (g *stallGuard) served(addr string) {
	if v, ok := g.conns.Load(addr); ok {
		v.(*guardedConn).transport.Store(true)
	}
}

// forget drops the connection from addr once it is served no more.
func (g *stallGuard) forget(addr string) { g.conns.Delete(addr) }

// forgetHandshakes drops the connections that never became a transport
// and are older than the handshake timeout: gRPC closed them.
func (g *stallGuard) forgetHandshakes(now time.Time) {
	g.conns.Range(func(k, v any) bool {
		if c := v.(*guardedConn); !c.transport.Load() && now.Sub(c.accepted) > handshakeTimeout {
			g.conns.CompareAndDelete(k, v)
		}
		return true
	})
}

// streamInterceptor times every send of every stream.
func (g *stallGuard) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	addr := ""
	if p, ok := peer.FromContext(ss.Context()); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	return handler(srv, &guardedStream{ServerStream: ss, g: g, addr: addr, method: info.FullMethod})
}

type guardedStream struct {
	grpc.ServerStream
	g      *stallGuard
	addr   string
	method string
}

// SendMsg sends m; should the send wait longer than the limit, the
// client's connection is closed, which ends the send with an error.
func (s *guardedStream) SendMsg(m any) error {
	t := time.AfterFunc(s.g.limit, func() { s.g.disconnect(s.addr, s.method) })
	err := s.ServerStream.SendMsg(m)
	t.Stop()
	return err
}

func (g *stallGuard) disconnect(addr, method string) {
	v, ok := g.conns.Load(addr)
	if !ok {
		return
	}
	g.stalls.Inc()
	g.log.Warn("closing a client connection: a response has waited for the client to read for too long",
		"peer", addr, "stream", method, "waited", g.limit)
	v.(*guardedConn).conn.Close()
}

// closeConn closes the client connection from addr, if it is open.
func (g *stallGuard) closeConn(addr string) {
	if v, ok := g.conns.Load(addr); ok {
		v.(*guardedConn).conn.Close()
	}
}

// sweep closes, until ctx ends, the connections of clients that left an
// xDS response unanswered for longer than the limit; unanswered lists
// them (statusTracker.unanswered) by address, with their proxy IDs.
func (g *stallGuard) sweep(ctx context.Context, unanswered func(cutoff time.Time) map[string]string) {
	tick := time.NewTicker(max(g.limit/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for addr, proxy := range unanswered(now.Add(-g.limit)) {
				g.disconnect(addr, "xDS of "+proxy)
			}
			g.forgetHandshakes(now)
		}
	}
}
