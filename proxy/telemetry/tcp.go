package telemetry

import "github.com/weft-mesh/weft/proxy/telemetry/metrics"

// TCPHooks are the telemetry of one TCP listener configuration's
// connections. The zero value records nothing.
type TCPHooks struct {
	m *metrics.TCP
}

// TCP returns the hooks of a TCP listener. Resolve them once per listener
// configuration, not per connection.
func (t *Telemetry) TCP(direction metrics.Direction, destination string) TCPHooks {
	m := t.metrics()
	if m == nil {
		return TCPHooks{}
	}
	return TCPHooks{m: m.TCP(direction, destination)}
}

// ConnOpened counts a connection that passed its handshake and RBAC and is
// about to be proxied.
func (h TCPHooks) ConnOpened() { h.m.Opened() }

// ConnClosed counts the connection's end and its bytes: bytesIn read from
// the downstream connection (and sent upstream), bytesOut written back to
// it. Call it once, when both copy directions are done.
func (h TCPHooks) ConnClosed(bytesIn, bytesOut int64) { h.m.Closed(bytesIn, bytesOut) }
