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
	handles   atomic.Pointer[tcpHandles]
}

type tcpHandles struct {
	self string
	m    *metrics.TCP
}

// TCP returns the hooks of a TCP listener whose connections go to
// destination; an empty destination is the sidecar's own service (inbound
// listeners), taken from LocalID when a connection opens. Resolve the
// hooks once per listener configuration, not per connection.
func (t *Telemetry) TCP(direction metrics.Direction, destination string) *TCPHooks {
	if t.metrics() == nil {
		return nil
	}
	return &TCPHooks{tel: t, direction: direction, dest: destination}
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
	return TCPConn{m}
}

// TCPConn is one counted connection. The zero value records nothing.
type TCPConn struct{ m *metrics.TCP }

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
func (c TCPConn) Closed(bytesIn, bytesOut int64) { c.m.Closed(bytesIn, bytesOut) }
