package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
	"github.com/weft-mesh/weft/proxy/xds"
)

// Defaults for Options fields left zero.
const (
	DefaultAdminAddr    = "127.0.0.1:19000"
	DefaultDrainTimeout = 10 * time.Second
)

// Options configure a weft-proxy.
type Options struct {
	// ProxyID is the xDS node ID: the sidecar's Consul service ID, e.g.
	// "web-1-sidecar-proxy". Required.
	ProxyID string
	// XDSAddrs are the management servers ("host:port"); the proxy fails
	// over to the next one when a connection fails. At least one.
	XDSAddrs []string
	// XDSProtocol is the ADS variant: XDSDelta (incremental, the default)
	// or XDSStateOfTheWorld.
	XDSProtocol string
	// AdminAddr is where the admin API listens (default 127.0.0.1:19000;
	// port 0 picks a free port, see Proxy.AdminAddr).
	AdminAddr string
	// DrainTimeout bounds how long connections may finish after shutdown
	// starts or after their listener is removed (default 10s).
	DrainTimeout time.Duration
	// XDSBackoff paces reconnections to the management servers
	// (default 250ms doubling up to 30s, with jitter), and retries of
	// failed leaf certificate renewals.
	XDSBackoff xds.Backoff
	// Token is the Consul ACL token sent to the certificate service
	// (metadata x-consul-token). At most one of Token and TokenFile.
	Token string
	// TokenFile is a file holding the token, read at every renewal.
	TokenFile string
	// LeafRenewFraction returns the fraction of a leaf certificate's
	// lifetime after which it is renewed (default uniform in [0.6, 0.7)).
	// Tests shorten it to force renewals.
	LeafRenewFraction func() float64
	// StateDir, if set, is where the proxy keeps its last-known-good
	// configuration and leaf certificate (with its private key, mode
	// 0600) and restores them from at start, so that it serves at once
	// when restarted while the control plane is unreachable (see package
	// proxy/statedir). Empty turns persistence off.
	StateDir string
	// Logger receives the proxy's logs (default slog.Default()).
	Logger *slog.Logger
	// LogLevel is Logger's level, which the admin API's /logging changes
	// at runtime; nil disables that endpoint.
	LogLevel *slog.LevelVar
	// AccessLog receives one line per request; nil logs none. The caller
	// closes it after Run returns.
	AccessLog *accesslog.Logger
	// HTTP1Server is the server of downstream HTTP/1.x connections:
	// HTTP1Lean (the default; one goroutine per connection, see package
	// proxy/listener) or HTTP1NetHTTP (net/http's server).
	HTTP1Server string
	// SocketIO is how reads and writes of TCP connections, downstream
	// and upstream, reach the kernel: SocketIORaw (the default; raw
	// system calls that do not wake the runtime's system monitor, see
	// package proxy/internal/rawio) or SocketIOStandard (net.Conn's).
	SocketIO string
	// HTTP2Server is the server of downstream HTTP/2 connections:
	// HTTP2Lean (the default; see proxy/listener/http2server.go) or
	// HTTP2NetHTTP (net/http's, behind the listener's h2Guard). With
	// HTTP1Server HTTP1NetHTTP, net/http's serves both.
	HTTP2Server string
	// HTTP2Client is the client of upstream HTTP/2 connections: HTTP2Lean
	// (the default; see proxy/cluster/http2.go) or HTTP2NetHTTP
	// (net/http's).
	HTTP2Client string
	// MaxConnectionsPerListener bounds the connections each listener
	// holds open; more are closed at once and counted
	// (listener.DefaultMaxConnections when 0, none when negative).
	MaxConnectionsPerListener int
	// Profiling serves Go's profiles on the admin API, under
	// /debug/pprof/ (off by default; see admin.Controls.Profiling).
	Profiling bool
}

// Servers of downstream HTTP/1.x connections, for Options.HTTP1Server.
const (
	HTTP1Lean    = "lean"
	HTTP1NetHTTP = "net/http"
)

// Servers and clients of HTTP/2 connections, for Options.HTTP2Server
// and Options.HTTP2Client.
const (
	HTTP2Lean    = "lean"
	HTTP2NetHTTP = "net/http"
)

// Socket I/O modes, for Options.SocketIO.
const (
	SocketIORaw      = "raw"
	SocketIOStandard = "standard"
)

// ADS variants of Options.XDSProtocol.
const (
	XDSDelta           = "delta"
	XDSStateOfTheWorld = "sotw"
)

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.XDSProtocol == "" {
		o.XDSProtocol = XDSDelta
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTP1Server == "" {
		o.HTTP1Server = HTTP1Lean
	}
	if o.SocketIO == "" {
		o.SocketIO = SocketIORaw
	}
	if o.HTTP2Client == "" {
		o.HTTP2Client = HTTP2Lean
	}
	if o.HTTP2Server == "" {
		o.HTTP2Server = HTTP2Lean
	}
	return o
}

// Validate reports every invalid field, naming it and its value. Zero
// fields that have defaults are valid.
func (o Options) Validate() error {
	var errs []error
	if o.ProxyID == "" {
		errs = append(errs, errors.New("ProxyID: required"))
	}
	if len(o.XDSAddrs) == 0 {
		errs = append(errs, errors.New("XDSAddrs: at least one address is required"))
	}
	for i, a := range o.XDSAddrs {
		if err := checkHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("XDSAddrs[%d] %q: %w", i, a, err))
		}
	}
	switch o.XDSProtocol {
	case "", XDSDelta, XDSStateOfTheWorld:
	default:
		errs = append(errs, fmt.Errorf("XDSProtocol %q: want %q or %q", o.XDSProtocol, XDSDelta, XDSStateOfTheWorld))
	}
	if o.AdminAddr != "" {
		if err := checkHostPort(o.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("AdminAddr %q: %w", o.AdminAddr, err))
		}
	}
	if o.Token != "" && o.TokenFile != "" {
		errs = append(errs, fmt.Errorf("Token and TokenFile %q: set at most one", o.TokenFile))
	}
	if o.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("DrainTimeout %s: must not be negative", o.DrainTimeout))
	}
	switch o.HTTP1Server {
	case "", HTTP1Lean, HTTP1NetHTTP:
	default:
		errs = append(errs, fmt.Errorf("HTTP1Server %q: want %q or %q", o.HTTP1Server, HTTP1Lean, HTTP1NetHTTP))
	}
	switch o.SocketIO {
	case "", SocketIORaw, SocketIOStandard:
	default:
		errs = append(errs, fmt.Errorf("SocketIO %q: want %q or %q", o.SocketIO, SocketIORaw, SocketIOStandard))
	}
	switch o.HTTP2Server {
	case "", HTTP2Lean, HTTP2NetHTTP:
	default:
		errs = append(errs, fmt.Errorf("HTTP2Server %q: want %q or %q", o.HTTP2Server, HTTP2Lean, HTTP2NetHTTP))
	}
	switch o.HTTP2Client {
	case "", HTTP2Lean, HTTP2NetHTTP:
	default:
		errs = append(errs, fmt.Errorf("HTTP2Client %q: want %q or %q", o.HTTP2Client, HTTP2Lean, HTTP2NetHTTP))
	}
	return errors.Join(errs...)
}

// tokenSource returns how the certificate service token is read.
func (o Options) tokenSource() func() (string, error) {
	if o.TokenFile != "" {
		return identity.FileToken(o.TokenFile)
	}
	return identity.StaticToken(o.Token)
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if host == "" {
		return errors.New("missing host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("invalid port %q", port)
	}
	return nil
}
