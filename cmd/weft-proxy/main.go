// Command weft-proxy is Weft's sidecar proxy. It is configured only over
// xDS (Envoy v3 ADS) by the Weft control plane; see docs/xds.md.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/telemetry/accesslog"
)

func main() {
	if err := newCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "weft-proxy:", err)
		os.Exit(1)
	}
}

type flags struct {
	proxyID       string
	sidecarFor    string
	xdsAddrs      []string
	xdsProtocol   string
	adminAddr     string
	logLevel      string
	logFormat     string
	drainTimeout  time.Duration
	token         string
	tokenFile     string
	accessLog     bool
	accessLogPath string
	stateDir      string
	releasePages  bool
	http1Server   string
	socketIO      string
	http2Client   string
	http2Server   string
	profiling     bool
	maxConns      int
}

// Environment variables read as Consul's CLI reads them.
const (
	envToken     = "CONSUL_HTTP_TOKEN"
	envTokenFile = "CONSUL_HTTP_TOKEN_FILE"
)

func newCommand() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "weft-proxy (--proxy-id ID | --sidecar-for SERVICE_ID) --xds-addr HOST:PORT[,HOST:PORT]",
		Short: "Weft's sidecar proxy, configured over xDS",
		Long: `weft-proxy is Weft's lightweight sidecar. It connects to the Weft control
plane over xDS (Envoy v3 aggregated discovery), binds the listeners it is
given and proxies TCP and HTTP (HTTP/1.1 and HTTP/2) traffic to the clusters
they name.

Connections between sidecars are mutual TLS with SPIFFE identities and are
authorized by the RBAC the control plane derives from Consul intentions.
The sidecar's private key is generated in memory and never leaves it: its
leaf certificate comes from the control plane's certificate service, which
it authenticates to with a Consul ACL token (--token or --token-file), and
is renewed before it expires. The trust bundle arrives over xDS (SDS).

It keeps serving its last accepted configuration while the control plane is
unreachable, and rejects (NACKs) configuration it does not understand.
With --state-dir it also saves that configuration and its leaf certificate
(private key included, mode 0600, never sent anywhere) to disk, and a
restart serves from them at once, before the control plane answers.
On SIGINT or SIGTERM it stops accepting connections and lets in-flight ones
finish for up to --drain-timeout.

Admin API (--admin-addr): GET /ready, /healthz, /config_dump, /listeners,
/clusters, /certs, /metrics (Prometheus: weft_proxy_* metrics, Go and
process metrics), GET/POST /logging?level=debug|info|warn|error (the log
level at runtime), POST /quitquitquit (graceful exit, as SIGTERM), and
with --admin-profiling Go's profiles under /debug/pprof/.

Each request is logged as one JSON line on standard output (--access-log,
--access-log-path); lines the output cannot take in time are dropped and
counted, never waited for. Tracing is configured by the control plane over
xDS.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.proxyID, "proxy-id", "", "xDS node ID: the sidecar's Consul service ID, e.g. web-1-sidecar-proxy (this or --sidecar-for)")
	fs.StringVar(&f.sidecarFor, "sidecar-for", "", "the Consul service ID of the instance to front, e.g. web-1, as consul connect envoy -sidecar-for: the control plane names its one registered sidecar, which becomes --proxy-id (this or --proxy-id)")
	fs.StringSliceVar(&f.xdsAddrs, "xds-addr", nil, "control plane xDS address(es) HOST:PORT, comma-separated; the next one is tried when a connection fails (required)")
	fs.StringVar(&f.xdsProtocol, "xds-protocol", proxy.XDSDelta, "ADS variant: delta (incremental) or sotw (state of the world)")
	fs.StringVar(&f.adminAddr, "admin-addr", proxy.DefaultAdminAddr, "admin API listen address HOST:PORT")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", proxy.DefaultDrainTimeout, "how long connections may finish after shutdown starts or their listener is removed")
	fs.StringVar(&f.token, "token", "", "Consul ACL token for the certificate service (default $"+envToken+")")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the Consul ACL token, re-read at every renewal (default $"+envTokenFile+", which wins over $"+envToken+")")
	fs.StringVar(&f.stateDir, "state-dir", "", "directory (created 0700) where the last accepted configuration and the leaf certificate and key are kept, to serve from after a restart while the control plane is down; empty: nothing is saved")
	fs.BoolVar(&f.releasePages, "release-startup-pages", true, "at the first quiet second after becoming ready (after a minute of traffic at most), give back the memory only start-up used: the executable's code and read-only data pages (they stay in the page cache and fault back in when used) and the freed heap; do so again 15-30s after the last request, connection, applied configuration or issued certificate, and once a minute under traffic; see docs/performance.md")
	fs.BoolVar(&f.accessLog, "access-log", true, "log one JSON line per request; --access-log=false turns the access log off")
	fs.StringVar(&f.accessLogPath, "access-log-path", "", "file the access log is appended to (default standard output)")
	fs.IntVar(&f.maxConns, "max-connections-per-listener", listener.DefaultMaxConnections, "connections each listener holds open at most; one more is closed at once and counted in weft_proxy_listener_connections_refused_total; -1 for no limit")
	fs.BoolVar(&f.profiling, "admin-profiling", false, "serve Go's CPU, heap, goroutine and contention profiles on the admin API under /debug/pprof/ (go tool pprof http://ADMIN/debug/pprof/profile); off by default, as they expose the process's code paths and arguments")
	fs.StringVar(&f.http1Server, "http1-server", proxy.HTTP1Lean, "server of downstream HTTP/1.x connections: lean (one goroutine per connection, net/http's parser) or net/http (net/http's server, which then serves HTTP/2 too)")
	fs.StringVar(&f.http2Server, "http2-server", proxy.HTTP2Lean, "server of downstream HTTP/2 (gRPC) connections: lean (frames read on the connection's goroutine, a response written by its handler, flushed when it flushes or returns; see docs/performance.md) or net/http (net/http's)")
	fs.StringVar(&f.http2Client, "http2-client", proxy.HTTP2Lean, "client of upstream HTTP/2 (gRPC) connections: lean (requests written on the caller's goroutine, a whole message in one write; see docs/performance.md) or net/http (net/http's)")
	fs.StringVar(&f.socketIO, "socket-io", proxy.SocketIORaw, "how TCP reads and writes reach the kernel: raw (system calls that do not wake the Go runtime's monitor thread, which saves a sidecar about a third of its CPU per request at moderate rates) or standard (net.Conn's); see docs/performance.md")
	cmd.MarkFlagsOneRequired("proxy-id", "sidecar-for")
	cmd.MarkFlagsMutuallyExclusive("proxy-id", "sidecar-for")
	cmd.MarkFlagRequired("xds-addr")
	return cmd
}

func run(cmd *cobra.Command, f flags) error {
	logger, level, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	applySoftMemoryLimit(logger)
	token, tokenFile, err := resolveToken(cmd, f)
	if err != nil {
		return err
	}
	if f.sidecarFor != "" {
		if f.proxyID, err = resolveSidecarFor(cmd.Context(), f.xdsAddrs, token, tokenFile, f.sidecarFor, logger); err != nil {
			return err
		}
	}
	accessLog, closeAccessLog, err := openAccessLog(cmd, f, logger)
	if err != nil {
		return err
	}
	defer closeAccessLog()
	p, err := proxy.New(proxy.Options{
		ProxyID:                   f.proxyID,
		XDSAddrs:                  f.xdsAddrs,
		XDSProtocol:               f.xdsProtocol,
		AdminAddr:                 f.adminAddr,
		DrainTimeout:              f.drainTimeout,
		Token:                     token,
		TokenFile:                 tokenFile,
		StateDir:                  f.stateDir,
		Profiling:                 f.profiling,
		MaxConnectionsPerListener: f.maxConns,
		Logger:                    logger,
		LogLevel:                  level,
		AccessLog:                 accessLog,
		HTTP1Server:               f.http1Server,
		SocketIO:                  f.socketIO,
		HTTP2Client:               f.http2Client,
		HTTP2Server:               f.http2Server,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	pauseGCUntilReady(ctx, p.BecameReady(), startupSettle, startupGCPause)
	if f.releasePages {
		go releaseStartupMemory(ctx, p, logger)
	}
	return p.Run(ctx)
}

// openAccessLog starts the access log the flags ask for: nil when it is
// off. The returned func flushes and closes it.
func openAccessLog(cmd *cobra.Command, f flags, logger *slog.Logger) (*accesslog.Logger, func(), error) {
	if !f.accessLog {
		if f.accessLogPath != "" {
			return nil, nil, fmt.Errorf("--access-log-path %q: the access log is off (--access-log=false)", f.accessLogPath)
		}
		return nil, func() {}, nil
	}
	var w io.Writer = cmd.OutOrStdout()
	var file *os.File
	if f.accessLogPath != "" {
		var err error
		if file, err = os.OpenFile(f.accessLogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			return nil, nil, fmt.Errorf("--access-log-path: %w", err)
		}
		w = file
	}
	l := accesslog.New(w, accesslog.Options{Logger: logger})
	return l, func() {
		l.Close()
		if file != nil {
			file.Close()
		}
	}, nil
}

// resolveToken picks the ACL token source: a flag, else the environment
// (where, as for Consul's CLI, the token file wins over the token).
func resolveToken(cmd *cobra.Command, f flags) (token, file string, err error) {
	fs := cmd.Flags()
	switch {
	case fs.Changed("token") && fs.Changed("token-file"):
		return "", "", fmt.Errorf("--token and --token-file: give at most one")
	case fs.Changed("token"):
		return f.token, "", nil
	case fs.Changed("token-file"):
		return "", f.tokenFile, nil
	case os.Getenv(envTokenFile) != "":
		return "", os.Getenv(envTokenFile), nil
	}
	return os.Getenv(envToken), "", nil
}

// newLogger returns the process's logger and its level, which the admin
// API's /logging changes at runtime.
func newLogger(level, format string) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), lv, nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), lv, nil
	}
	return nil, nil, fmt.Errorf("--log-format %q: want text or json", format)
}
