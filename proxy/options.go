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

// Defaults for Config fields left zero.
const (
	DefaultAdminAddr    = "127.0.0.1:19000"
	DefaultDrainTimeout = 10 * time.Second
)

// Config configures a weft-proxy.
type Config struct {
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
	// proxy/state). Empty turns persistence off.
	StateDir string
	// Logger receives the proxy's logs (default slog.Default()).
	Logger *slog.Logger
	// LogLevel is Logger's level, which the admin API's /logging changes
	// at runtime; nil disables that endpoint.
	LogLevel *slog.LevelVar
	// AccessLog receives one line per request; nil logs none. The caller
	// closes it after Run returns.
	AccessLog *accesslog.Logger
}

// ADS variants of Config.XDSProtocol.
const (
	XDSDelta           = "delta"
	XDSStateOfTheWorld = "sotw"
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.XDSProtocol == "" {
		c.XDSProtocol = XDSDelta
	}
	if c.AdminAddr == "" {
		c.AdminAddr = DefaultAdminAddr
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every invalid field, naming it and its value. Zero
// fields that have defaults are valid.
func (c Config) Validate() error {
	var errs []error
	if c.ProxyID == "" {
		errs = append(errs, errors.New("ProxyID: required"))
	}
	if len(c.XDSAddrs) == 0 {
		errs = append(errs, errors.New("XDSAddrs: at least one address is required"))
	}
	for i, a := range c.XDSAddrs {
		if err := checkHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("XDSAddrs[%d] %q: %w", i, a, err))
		}
	}
	switch c.XDSProtocol {
	case "", XDSDelta, XDSStateOfTheWorld:
	default:
		errs = append(errs, fmt.Errorf("XDSProtocol %q: want %q or %q", c.XDSProtocol, XDSDelta, XDSStateOfTheWorld))
	}
	if c.AdminAddr != "" {
		if err := checkHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("AdminAddr %q: %w", c.AdminAddr, err))
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, fmt.Errorf("Token and TokenFile %q: set at most one", c.TokenFile))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("DrainTimeout %s: must not be negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// tokenSource returns how the certificate service token is read.
func (c Config) tokenSource() func() (string, error) {
	if c.TokenFile != "" {
		return identity.FileToken(c.TokenFile)
	}
	return identity.StaticToken(c.Token)
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
