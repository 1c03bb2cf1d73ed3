package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"
)

// A mesh gateway's listener (config.ModeSNI) routes each connection by the
// server name of its TLS ClientHello and passes the TLS session through:
// the gateway reads the ClientHello but never answers it, holds no key and
// sees no plaintext.

// errHelloRead ends the handshake crypto/tls starts once the ClientHello
// has been read: the gateway only wants its server name.
var errHelloRead = errors.New("ClientHello read")

// peekServerName reads conn's TLS ClientHello within timeout and returns
// its server name (lower case; empty when the client sent none) and a
// connection that replays the bytes read before the rest of conn. Nothing
// is written to conn.
func peekServerName(ctx context.Context, conn net.Conn, timeout time.Duration) (string, net.Conn, error) {
	rec := &recordingConn{Conn: conn}
	var name string
	seen := false
	srv := tls.Server(rec, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, seen = strings.ToLower(h.ServerName), true
		return nil, errHelloRead
	}})
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := srv.HandshakeContext(ctx)
	if !seen {
		if err == nil {
			err = errors.New("no ClientHello")
		}
		return "", nil, err
	}
	return name, &replayConn{Conn: conn, r: io.MultiReader(bytes.NewReader(rec.read.Bytes()), conn)}, nil
}

// recordingConn keeps what is read from it and refuses writes, so that
// crypto/tls can parse a ClientHello without answering it (not even with
// an alert).
type recordingConn struct {
	net.Conn
	read bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Write(p[:n])
	return n, err
}

func (c *recordingConn) Write([]byte) (int, error) { return 0, errHelloRead }

// replayConn reads the recorded ClientHello, then the connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the underlying TCP connection, so that relays
// pass a FIN on.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
