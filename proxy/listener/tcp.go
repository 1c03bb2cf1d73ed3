package listener

import (
	"context"
	"errors"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/relay"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// serveTCP proxies one authorized downstream connection to a host of the
// listener's cluster (l: a's listener, or the filter chain of a
// transparent listener the connection matched). Without a cluster, an available host, a free
// connection under max_connections or a successful connect (and
// handshake, for TLS clusters), the downstream connection is closed.
// Connect failures and successes feed the host's outlier detection, and
// are logged with their x-weft-error reason (peer_unreachable and
// no_exported_service to a peer's service). The connection is counted
// (opened, closed, bytes each way) from here on; on a gateway's listener,
// in the gateway metrics of the target it reached too.
func (b *bound) serveTCP(c *connInfo, a *active, l *config.Listener) {
	b.m.activity.Add(1)
	counted := a.tcp.ConnOpened()
	var in, out int64
	defer func() { counted.Closed(in, out) }()
	down := c.conn
	defer down.Close()
	stopDown := context.AfterFunc(b.force, func() { c.raw.Close() })
	defer stopDown()

	cl := b.m.opts.Clusters.Get(l.Cluster)
	if cl == nil {
		b.log.Debug("tcp: unknown cluster; closing", "listener", l.Name, "cluster", l.Cluster)
		return
	}
	att, err := cl.Pick(balancer.PickInfo{}, nil, 0)
	if err != nil {
		b.log.Debug("tcp: no available upstream; closing", "listener", l.Name, "cluster", l.Cluster, "error", err)
		return
	}
	defer att.Release()
	up, err := att.Cluster.Dial(b.force, att.Host.Address()) // an aggregate's child, or cl
	if err != nil {
		if errors.Is(err, cluster.ErrOverflow) {
			att.Report(outlier.Ignored)
			b.log.Debug("tcp: max_connections reached; closing", "listener", l.Name, "cluster", att.Cluster.Name())
			return
		}
		att.Report(outlier.GatewayFailure)
		b.log.Debug("tcp: connect failure; closing", "listener", l.Name, "cluster", att.Cluster.Name(), "endpoint", att.Host.Address(),
			"reason", att.Cluster.ConnectFailureReason(err), "error", err)
		return
	}
	att.Report(outlier.Success)
	counted = counted.Connected(att.Cluster.TargetMetrics())
	defer up.Close()
	stopUp := context.AfterFunc(b.force, func() { up.Close() })
	defer stopUp()
	in, out = relay.Pipe(down, up)
}
