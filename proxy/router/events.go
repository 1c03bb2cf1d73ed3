package router

import (
	"context"
	"errors"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/localreply"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// AttemptEnded: an attempt got its response headers, or failed.
	AttemptEnded EventKind = iota
	// BreakerOpened: the attempt's failure opened its host's breaker;
	// outlier detection ejected the host.
	BreakerOpened
	// HostsEjected: outlier detection held some of the cluster's hosts
	// out of service when the attempt picked its host (or found none).
	HostsEjected
	// TimedOut: a timeout ended an attempt, or the whole request.
	TimedOut
)

// Timeouts, as an Event names them.
const (
	RouteTimeout  = "route"   // the route's timeout (or the request's gRPC deadline)
	PerTryTimeout = "per_try" // the retry policy's per_try_timeout
	IdleTimeout   = "idle"    // the stream was idle for its idle_timeout
)

// Event is something that happened to a request on its way upstream, as
// Hooks.Observe is told it. Only the fields of its Kind are set.
type Event struct {
	Kind EventKind
	// Attempt is the attempt's number, 1 for the first.
	Attempt int
	// Host is the attempt's host (AttemptEnded, BreakerOpened; nil when
	// HostsEjected found none).
	Host *cluster.Host
	// Cluster is the attempt's cluster (AttemptEnded): the route's, or
	// the child an aggregate cluster chose.
	Cluster *cluster.Cluster
	// Status and GRPCStatus are the attempt's response (AttemptEnded): 0
	// and -1 without a response or a grpc-status.
	Status, GRPCStatus int
	// Failure is why an attempt got no response (AttemptEnded):
	// connect_failure (peer_unreachable or no_exported_service to a
	// peer's service), upstream_reset, upstream_timeout or overflow.
	Failure localreply.Reason
	// Timeout is the timeout that fired (TimedOut): RouteTimeout,
	// PerTryTimeout or IdleTimeout.
	Timeout string
	// Ejected is the number of hosts held out of service (HostsEjected).
	Ejected int
}

// observe tells the Observe hook e, if there is one.
func (ex *exchange) observe(e Event) {
	if hook := ex.rt.hooks.Observe; hook != nil {
		hook(ex.down, e)
	}
}

// observePick reports the hosts outlier detection held out of service
// when an attempt picked att's host (none: none could be picked), in
// the host's cluster (for an aggregate, the child chosen; all children
// when none was).
func (ex *exchange) observePick(attempt int, att cluster.Attempt) {
	if ex.rt.hooks.Observe == nil {
		return
	}
	c := att.Cluster
	if c == nil {
		c = ex.cluster
	}
	if n := c.Ejected(); n > 0 {
		ex.observe(Event{Kind: HostsEjected, Attempt: attempt, Host: att.Host, Ejected: n})
	}
}

// observeTimeout reports the timeout that cancelled ctx, if one did.
func (ex *exchange) observeTimeout(ctx context.Context, attempt int) {
	if ex.rt.hooks.Observe == nil {
		return
	}
	if t := timeoutOf(context.Cause(ctx)); t != "" {
		ex.observe(Event{Kind: TimedOut, Attempt: attempt, Timeout: t})
	}
}

// timeoutOf names the timeout a cancellation cause is, "" for others.
func timeoutOf(cause error) string {
	switch {
	case errors.Is(cause, errRouteTimeout):
		return RouteTimeout
	case errors.Is(cause, errPerTryTimeout):
		return PerTryTimeout
	case errors.Is(cause, errIdleTimeout):
		return IdleTimeout
	}
	return ""
}
