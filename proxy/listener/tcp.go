package listener

import (
	"context"
	"io"
	"net"

	"github.com/weft-mesh/weft/proxy/config"
)

// serveTCP proxies one authorized downstream connection to an endpoint of
// the listener's cluster. Without a cluster, a healthy endpoint or a
// successful connect (and handshake, for TLS clusters), the downstream
// connection is closed.
func (b *bound) serveTCP(c *connInfo, l *config.Listener) {
	down := c.conn
	defer down.Close()
	stopDown := context.AfterFunc(b.force, func() { c.raw.Close() })
	defer stopDown()

	cl := b.m.opts.Clusters.Get(l.Cluster)
	if cl == nil {
		b.log.Debug("tcp: unknown cluster; closing", "listener", l.Name, "cluster", l.Cluster)
		return
	}
	res, err := cl.Pick()
	if err != nil {
		b.log.Debug("tcp: no healthy upstream; closing", "listener", l.Name, "cluster", l.Cluster)
		return
	}
	if res.Done != nil {
		defer res.Done()
	}
	up, err := cl.Dial(b.force, res.Endpoint.Address)
	if err != nil {
		b.log.Debug("tcp: connect failure; closing", "listener", l.Name, "cluster", l.Cluster, "endpoint", res.Endpoint.Address, "error", err)
		return
	}
	defer up.Close()
	stopUp := context.AfterFunc(b.force, func() { up.Close() })
	defer stopUp()
	pipe(down, up)
}

// pipe copies both ways until both directions are done. A clean EOF in one
// direction half-closes the other side (so request/response protocols and
// echo servers work); an error in either direction closes both.
func pipe(down, up net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(up, down)
	}()
	copyHalf(down, up)
	<-done
}

func copyHalf(dst, src net.Conn) {
	buf := getBuffer()
	defer putBuffer(buf)
	if _, err := io.CopyBuffer(dst, src, *buf); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}
