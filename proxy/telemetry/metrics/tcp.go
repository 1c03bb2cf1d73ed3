package metrics

import "github.com/prometheus/client_golang/prometheus"

type tcpKey struct {
	direction   Direction
	destination string
}

// TCP is the connection metrics of one (direction, destination). A nil
// *TCP records nothing.
//
// Bytes are counted from the downstream peer's side of the sidecar:
// received is what the sidecar read from the downstream connection (and
// sent upstream), sent is what it wrote back to it.
type TCP struct {
	opened, closed, received, sent prometheus.Counter
}

// TCP returns the handle of a label tuple, the same one for the same
// labels. Resolve it once per listener configuration.
func (m *Metrics) TCP(direction Direction, destination string) *TCP {
	k := tcpKey{direction, destination}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tcp[k]
	if t == nil {
		d := string(direction)
		t = &TCP{
			opened:   m.tcpOpened.WithLabelValues(d, destination),
			closed:   m.tcpClosed.WithLabelValues(d, destination),
			received: m.tcpBytes.WithLabelValues(d, destination, "received"),
			sent:     m.tcpBytes.WithLabelValues(d, destination, "sent"),
		}
		m.tcp[k] = t
	}
	return t
}

// Opened counts a connection accepted (and authorized) for proxying.
func (t *TCP) Opened() {
	if t != nil {
		t.opened.Inc()
	}
}

// Transferred adds bytes proxied so far. Long-lived connections may call it
// as they go; Closed adds what was not reported yet.
func (t *TCP) Transferred(received, sent int64) {
	if t == nil {
		return
	}
	if received > 0 {
		t.received.Add(float64(received))
	}
	if sent > 0 {
		t.sent.Add(float64(sent))
	}
}

// Closed counts a connection closed and the bytes it moved that were not
// reported with Transferred.
func (t *TCP) Closed(received, sent int64) {
	if t == nil {
		return
	}
	t.Transferred(received, sent)
	t.closed.Inc()
}
