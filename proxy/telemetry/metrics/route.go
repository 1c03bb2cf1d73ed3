package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-mesh/weft/proxy/localreply"
)

type routeKey struct {
	direction                     Direction
	source, destination, protocol string
}

// Route is the request metrics of one (direction, source, destination,
// protocol). A nil *Route records nothing.
type Route struct {
	vec      *prometheus.CounterVec
	key      routeKey
	duration prometheus.Observer

	// results holds a counter per (code, grpc_status, reason) seen so far,
	// copied on write; a route sees a handful, so a scan beats a map.
	results atomic.Pointer[[]result]
	mu      sync.Mutex // serializes growth of results
}

type result struct {
	code       int
	grpcStatus string
	reason     string
	counter    prometheus.Counter
}

// Route returns the handle of a label tuple, the same one for the same
// labels. Resolve it once per configuration or connection, not per
// request: it takes a lock and a map lookup.
func (m *Metrics) Route(direction Direction, source, destination, protocol string) *Route {
	k := routeKey{direction, source, destination, protocol}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.routes[k]
	if r == nil {
		r = &Route{
			vec:      m.requests,
			key:      k,
			duration: m.duration.WithLabelValues(string(direction), source, destination, protocol),
		}
		r.results.Store(&[]result{})
		m.routes[k] = r
	}
	return r
}

// Observe counts one request that ended with the HTTP status code (0 when
// no response was sent), grpcStatus ("" for non-gRPC) and the sidecar's
// x-weft-error reason ("" when the response is not the sidecar's own), and
// records its duration. It does not allocate once the route has seen the
// same result before.
//
// Label values that a peer could make up are bounded: a grpcStatus other
// than "0" to "16" and a reason the sidecar does not generate (see localreply) count as "other".
func (r *Route) Observe(code int, grpcStatus, reason string, d time.Duration) {
	if r == nil {
		return
	}
	r.counter(code, boundGRPCStatus(grpcStatus), boundReason(reason)).Inc()
	r.duration.Observe(d.Seconds())
}

func (r *Route) counter(code int, grpcStatus, reason string) prometheus.Counter {
	if c := find(*r.results.Load(), code, grpcStatus, reason); c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.results.Load()
	if c := find(old, code, grpcStatus, reason); c != nil {
		return c
	}
	c := r.vec.WithLabelValues(string(r.key.direction), r.key.source, r.key.destination, r.key.protocol,
		strconv.Itoa(code), grpcStatus, reason)
	grown := append(old[:len(old):len(old)], result{code, grpcStatus, reason, c})
	r.results.Store(&grown)
	return c
}

func find(rs []result, code int, grpcStatus, reason string) prometheus.Counter {
	for i := range rs {
		if rs[i].code == code && rs[i].grpcStatus == grpcStatus && rs[i].reason == reason {
			return rs[i].counter
		}
	}
	return nil
}

// Other replaces label values outside the known set.
const Other = "other"

// boundReason keeps "" and the x-weft-error reasons the sidecar
// generates (localreply.Known); others count as "other".
func boundReason(reason string) string {
	if reason == "" {
		return ""
	}
	if r, ok := localreply.Known(reason); ok {
		return string(r)
	}
	return Other
}

// boundGRPCStatus keeps "" and the 17 gRPC codes "0" to "16".
func boundGRPCStatus(s string) string {
	switch len(s) {
	case 0:
		return s
	case 1:
		if s[0] >= '0' && s[0] <= '9' {
			return s
		}
	case 2:
		if s[0] == '1' && s[1] >= '0' && s[1] <= '6' {
			return s
		}
	}
	return Other
}
