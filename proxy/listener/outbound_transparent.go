package listener

import (
	"context"
	"net"
	"net/netip"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/relay"
)

// noChain serves requests of connections no filter chain takes: with no
// HTTP settings they get a no_route local reply.
var noChain = &config.Listener{}

// chainOf returns the configuration serving a connection: the listener's
// own, for a transparent listener the filter chain its original
// destination selects now, for a mesh gateway's the chain its TLS server
// name selects (nil when none does). HTTP requests look it up
// again per request, so a new configuration applies to open connections
// as it does on other listeners.
func chainOf(a *active, c *connInfo) *config.Listener {
	switch {
	case a.SNI != nil:
		return a.SNI.Match(c.serverName)
	case a.Transparent == nil:
		return a.Listener
	}
	return a.Transparent.Match(c.dst)
}

// httpChain is chainOf for an HTTP request on the listener configuration
// a: never nil.
func httpChain(a *active, c *connInfo) *config.Listener {
	if a.Transparent == nil || c == nil {
		return a.Listener
	}
	if l := a.Transparent.Match(c.dst); l != nil && l.Mode == config.ModeHTTP {
		return l
	}
	return noChain
}

// recordOriginalDst notes where a connection accepted on a transparent
// listener was headed before iptables redirected it (SO_ORIGINAL_DST); a
// connection that was not redirected was headed here, as Envoy's
// original_dst filter assumes.
func (b *bound) recordOriginalDst(c *connInfo) {
	local := addrPortOf(c.raw.LocalAddr())
	dst, err := originalDst(c.raw)
	if err != nil {
		b.log.Debug("no original destination; using the local address", "remote", c.raw.RemoteAddr().String(), "error", err)
		dst = local
	}
	c.dst, c.toSelf = dst, dst == local
}

// servePassthrough proxies a connection to its original destination
// (ModeOriginalDst), as Envoy's ORIGINAL_DST cluster does. The proxy's
// own connections are not redirected, so this cannot loop back, except
// for a connection made to the listener itself, which is closed.
func (b *bound) servePassthrough(c *connInfo, a *active, l *config.Listener) {
	b.m.activity.Add(1)
	counted := a.tcp.ConnOpened()
	var in, out int64
	defer func() { counted.Closed(in, out) }()
	down := c.conn
	defer down.Close()
	if c.toSelf {
		b.log.Debug("passthrough: the original destination is this listener; closing", "listener", l.Name, "remote", c.raw.RemoteAddr().String())
		return
	}
	stopDown := context.AfterFunc(b.force, func() { c.raw.Close() })
	defer stopDown()
	ctx, cancel := context.WithTimeout(b.force, orDefault(l.ConnectTimeout, config.DefaultConnectTimeout))
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.dst.String())
	cancel()
	if err != nil {
		b.log.Debug("passthrough: connect failure; closing", "listener", l.Name, "destination", c.dst.String(), "error", err)
		return
	}
	defer up.Close()
	stopUp := context.AfterFunc(b.force, func() { up.Close() })
	defer stopUp()
	in, out = relay.Pipe(down, up)
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}
