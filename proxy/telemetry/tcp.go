package telemetry

import (
	"sync/atomic"

	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

// TCPHooks are the telemetry of one TCP listener configuration's
// connections. A nil or zero *TCPHooks records nothing.
type TCPHooks struct {
	tel       *Telemetry
	direction metrics.Direction
	dest      string // "" for the sidecar's own service
	gateway   string // the gateway kind; "" for a sidecar's listener
	handles   atomic.Pointer[tcpHandles]
}

type tcpHandles struct {
	self string
	m    *metrics.TCP
}

// TCP returns the hooks of a TCP listener whose connections go to
// destination; an empty destination is the sidecar's own service (inbound
// listeners), taken from LocalID when a connection opens. gateway is the
// kind of gateway the listener serves ("mesh-gateway"…), whose
// connections also count in the gateway metrics of their target; "" for
// a sidecar's. Resolve the hooks once per listener configuration, not per
// connection.
func (t *Telemetry) TCP(direction metrics.Direction, destination, gateway string) *TCPHooks {
	if t.metrics() == nil {
		return nil
	}
	return &TCPHooks{tel: t, direction: direction, dest: destination, gateway: gateway}
}

// ConnOpened counts a connection that passed its handshake and RBAC and is
// about to be proxied. Call Closed on what it returns when the connection
// ends.
func (h *TCPHooks) ConnOpened() TCPConn {
	if h == nil || h.tel.metrics() == nil {
		return TCPConn{}
	}
	m := h.metrics()
	m.Opened()
	return TCPConn{m: m, gateway: h.gateway}
}

// TCPConn is one counted connection. The zero value records nothing.
type TCPConn struct {
	m       *metrics.TCP
	gateway string
	gw      *metrics.Gateway
}

// Connected counts the connection, on a gateway's listener, as passed to
// a host of a cluster whose target is target (cluster.TargetMetrics; nil
// for a cluster without one), and returns it with its bytes counted there
// too when it closes. It does not allocate once the target has seen the
// gateway's kind.
func (c TCPConn) Connected(target *metrics.Target) TCPConn {
	if c.gateway == "" {
		return c
	}
	c.gw = target.Gateway(c.gateway)
	c.gw.Connected()
	return c
}

func (h *TCPHooks) metrics() *metrics.TCP {
	if h.dest != "" {
		if c := h.handles.Load(); c != nil {
			return c.m
		}
		c := &tcpHandles{m: h.tel.Metrics.TCP(h.direction, h.dest)}
		h.handles.Store(c)
		return c.m
	}
	self, _ := h.tel.self(&Listener{})
	if c := h.handles.Load(); c != nil && c.self == self {
		return c.m
	}
	c := &tcpHandles{self: self, m: h.tel.Metrics.TCP(h.direction, self)}
	h.handles.Store(c)
	return c.m
}

// Closed counts the connection's end and its bytes: bytesIn read from the
// downstream connection (and sent upstream), bytesOut written back to it.
// Call it once, when both copy directions are done.
func (c TCPConn) Closed(bytesIn, bytesOut int64) {
	c.m.Closed(bytesIn, bytesOut)
	c.gw.Transferred(bytesIn, bytesOut)
}
