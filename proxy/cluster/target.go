package cluster

import (
	"net"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

// Target is what the cluster leads to, as the control plane states it
// (config.Target); zero when it did not say.
func (c *Cluster) Target() config.Target { return c.state.Load().cfg.Target }

// TargetMetrics returns the handle of the gateway metrics of the
// cluster's target (Options.Target); nil for a nil cluster, one without a
// target, or when nobody counts. It takes no lock.
func (c *Cluster) TargetMetrics() *metrics.Target {
	if c == nil {
		return nil
	}
	return c.state.Load().targetMetrics
}

// acquireTarget holds the metrics handle of t, when it is a target and
// somebody counts.
func (c *Cluster) acquireTarget(t config.Target) *metrics.Target {
	if c.target == nil || t == (config.Target{}) {
		return nil
	}
	return c.target(t)
}

// ConnectFailureReason is the x-weft-error reason of err, a failure to
// connect to a host of c (a dial, or its TLS handshake, which Dial and
// the transports report as dial errors): connect_failure, unless c leads
// to a cluster peer's service (config.Target.FromPeer), whose hosts are
// mesh gateways: then no_exported_service when the gateway refused the
// handshake with a TLS unrecognized_name alert (Weft's mesh gateway
// answers a server name it routes nowhere so), else peer_unreachable.
func (c *Cluster) ConnectFailureReason(err error) localreply.Reason {
	switch {
	case !c.Target().FromPeer():
		return localreply.ConnectFailure
	case unrecognizedName(err):
		return localreply.NoExportedService
	}
	return localreply.PeerUnreachable
}

// unrecognizedName reports whether err holds a TLS unrecognized_name
// alert received from the server: crypto/tls reports an alert received as
// a *net.OpError "remote error" around its unexported alert type, whose
// text is "tls: unrecognized name".
func unrecognizedName(err error) bool {
	if op, ok := err.(*net.OpError); ok && op.Op == "remote error" {
		return op.Err != nil && op.Err.Error() == "tls: unrecognized name"
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return unrecognizedName(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if unrecognizedName(inner) {
				return true
			}
		}
	}
	return false
}
