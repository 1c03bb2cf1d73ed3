package listener

import (
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/telemetry"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// observed is the telemetry of one listener configuration: the HTTP
// handler wrapped in the telemetry middleware (outermost, so that the
// sidecar's own replies are seen too), the tracer it holds, and the TCP
// hooks. It is built when the configuration is swapped in and is
// immutable; release gives the tracer back once it is replaced.
type observed struct {
	http   http.Handler
	tracer *tracing.Tracer
	tcp    *telemetry.TCPHooks
}

// observe builds the telemetry of a, whose HTTP requests inner serves. A
// tracer that cannot be acquired (a collector cluster without endpoints)
// is logged and the listener serves without tracing.
func (b *bound) observe(a *active, inner http.Handler) observed {
	l := a.Listener
	tel := b.m.opts.Telemetry
	dir := metrics.Outbound
	if l.Direction == config.Inbound {
		dir = metrics.Inbound
	}
	o := observed{tcp: tel.TCP(dir, destinationOf(l), l.Gateway.String())}
	tcfg := tracingOf(l)
	if ps := b.m.opts.Tracers; ps != nil && tcfg != nil {
		tr, err := ps.Acquire(tcfg)
		if err != nil {
			b.log.Warn("tracing off for this listener configuration", "listener", l.Name, "error", err)
		}
		o.tracer = tr
	}
	tl := telemetry.Listener{Direction: dir, Route: routeLabel(l), Tracer: o.tracer, Gateway: l.Gateway.String()}
	if tcfg != nil {
		tl.Service = tcfg.ServiceName
	}
	if dir == metrics.Outbound {
		tl.Peer = destinationOf(l)
	}
	o.http = tel.Wrap(inner, tl)
	return o
}

func (o observed) release() { o.tracer.Release() }

// tracingOf is l's tracing config; nil traces nothing.
func tracingOf(l *config.Listener) *tracing.Config {
	if l.HTTP == nil {
		return nil
	}
	return l.HTTP.Tracing
}

// destinationOf names the service an outbound listener leads to: its
// route configuration without a "?dc=" suffix, else the upstream name
// that starts Weft's upstream listener names ("api:127.0.0.1:9191"), else
// its cluster. Inbound listeners lead to the sidecar's own service, which
// telemetry knows; this returns "" for them.
func destinationOf(l *config.Listener) string {
	if l.Direction == config.Inbound {
		return ""
	}
	if l.HTTP != nil && l.HTTP.RouteConfigName != "" {
		name, _, _ := strings.Cut(l.HTTP.RouteConfigName, "?")
		return name
	}
	if name, _, ok := strings.Cut(l.Name, ":"); ok && name != "" {
		return name
	}
	return l.Cluster
}

// routeLabel is the access log's route of requests whose matched route
// has no name: the route configuration, else the listener.
func routeLabel(l *config.Listener) string {
	if l.HTTP != nil && l.HTTP.RouteConfigName != "" {
		return l.HTTP.RouteConfigName
	}
	return l.Name
}
