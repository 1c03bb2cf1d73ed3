package telemetry

import (
	"context"

	"github.com/weft-mesh/weft/proxy/router"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// Observe records what the router reports of a request that went through
// a Handler as events of its span (tracing's AttemptEnded, TimedOut,
// BreakerOpened, HostsEjected), notes the instance of the last
// attempt's host for the span's attributes, and the target of its
// cluster for a gateway's metrics. Use it as router.Hooks.Observe. For a
// request whose span does not record (not sampled, or no tracer) it
// notes the target only, and allocates nothing.
func Observe(ctx context.Context, e router.Event) {
	st := stateFrom(ctx)
	if st == nil {
		return
	}
	if e.Kind == router.AttemptEnded {
		st.target = e.Cluster.TargetMetrics()
	}
	if !st.span.IsRecording() {
		return
	}
	switch e.Kind {
	case router.AttemptEnded:
		st.upstreamInstance = e.Host.InstanceID()
		st.span.AttemptEnded(tracing.Attempt{N: e.Attempt, Host: e.Host.Address(), Instance: e.Host.InstanceID(),
			Status: e.Status, GRPCStatus: e.GRPCStatus, Failure: string(e.Failure)})
	case router.TimedOut:
		st.span.TimedOut(e.Timeout, e.Attempt)
	case router.BreakerOpened:
		st.span.BreakerOpened(e.Host.Address(), e.Host.InstanceID())
	case router.HostsEjected:
		st.span.HostsEjected(e.Ejected, e.Attempt)
	}
}
