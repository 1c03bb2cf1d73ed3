package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// A gateway's listener (config.ModeSNI) routes each connection by the
// server name of its TLS ClientHello. A mesh gateway's chains pass the TLS
// session through: the gateway reads the ClientHello but never answers it,
// holds no key and sees no plaintext. A terminating gateway's chains
// answer it: the handshake presents the chain's leaf (a linked service's)
// and verifies the client as an inbound listener does; the connection is
// then authorized and proxied as any TLS TCP connection (conn.go).

// openSNI reads a connection's ClientHello and, when the chain its server
// name selects in a terminates TLS, answers it with that chain's handshake
// over the replayed ClientHello, all within handshakeTimeout. It returns
// the server name and the connection to serve: the TLS connection, or one
// that replays the ClientHello to pass through. A server name no chain
// takes is errUnrecognizedName: refuseServerName answers it.
func (b *bound) openSNI(a *active, raw net.Conn) (string, net.Conn, error) {
	ctx, cancel := context.WithTimeout(b.force, handshakeTimeout)
	defer cancel()
	name, replay, err := peekServerName(ctx, raw, handshakeTimeout)
	if err != nil {
		return "", nil, fmt.Errorf("no TLS ClientHello: %w", err)
	}
	chain := a.SNI.Match(name)
	if chain == nil {
		return name, nil, errUnrecognizedName
	}
	cfg := a.sniTLS[chain]
	if cfg == nil {
		return name, replay, nil
	}
	tc := tls.Server(replay, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return name, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return name, tc, nil
}

// errUnrecognizedName: no chain of the listener takes the ClientHello's
// server name.
var errUnrecognizedName = errors.New("no filter chain matches the server name")

// unrecognizedNameAlert is a TLS record holding a fatal unrecognized_name
// alert (RFC 6066, section 3): content type alert (21), record version
// TLS 1.2 (RFC 8446 has every record after the first ClientHello say
// so), length 2, level fatal (2), description unrecognized_name (112).
var unrecognizedNameAlert = []byte{21, 3, 3, 0, 2, 2, 112}

// alertLinger bounds how long refuseServerName waits for the client to
// close after the alert.
const alertLinger = time.Second

// refuseServerName answers a ClientHello whose server name no chain takes
// with a fatal unrecognized_name alert, as RFC 6066 allows, so that the
// client learns why (Weft's sidecars report no_exported_service), then
// closes conn. It half-closes first and reads until the client closes
// (within alertLinger): closing with unread bytes would reset the
// connection, which may destroy the alert before the client reads it.
func refuseServerName(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(alertLinger))
	if _, err := conn.Write(unrecognizedNameAlert); err != nil {
		return
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, conn)
}

// sameTermination reports whether conn, opened by openSNI, is served as
// chain wants: terminated when it has TLS, else passed through. A swap
// between the handshake and the choice of the chain may change that.
func sameTermination(chain *config.Listener, conn net.Conn) bool {
	_, terminated := conn.(*tls.Conn)
	return terminated == (chain.TLS != nil)
}

// sniTLSConfigs builds the TLS configuration of each chain of r that
// terminates TLS, reusing prev's for a chain of the same name whose TLS
// context did not change, so that its sessions resume across swaps. Each
// chain has its own, so a session of one linked service never resumes on
// another's.
func sniTLSConfigs(r *config.SNIRouter, prev *active, creds mtls.Credentials) map[*config.Listener]*tls.Config {
	type built struct {
		params *mtls.Server
		cfg    *tls.Config
	}
	before := map[string]built{}
	if prev != nil {
		for chain, cfg := range prev.sniTLS {
			before[chain.Name] = built{chain.TLS, cfg}
		}
	}
	out := map[*config.Listener]*tls.Config{}
	for _, chain := range r.Chains {
		switch b, ok := before[chain.Name]; {
		case chain.TLS == nil:
		case ok && b.params.Equal(chain.TLS):
			out[chain] = b.cfg
		default:
			out[chain] = creds.ServerConfig(chain.TLS)
		}
	}
	return out
}

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
