// Command weft-proxy is Weft's sidecar proxy. It is configured only over
// xDS (Envoy v3 ADS) by the Weft control plane; see docs/xds.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/proxy"
)

func main() {
	if err := newCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "weft-proxy:", err)
		os.Exit(1)
	}
}

type flags struct {
	proxyID      string
	xdsAddrs     []string
	adminAddr    string
	logLevel     string
	logFormat    string
	drainTimeout time.Duration
}

func newCommand() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "weft-proxy --proxy-id ID --xds-addr HOST:PORT[,HOST:PORT]",
		Short: "Weft's sidecar proxy, configured over xDS",
		Long: `weft-proxy is Weft's lightweight sidecar. It connects to the Weft control
plane over xDS (Envoy v3 aggregated discovery), binds the listeners it is
given and proxies TCP and HTTP/1.1 traffic to the clusters they name.

It keeps serving its last accepted configuration while the control plane is
unreachable, and rejects (NACKs) configuration it does not understand.
On SIGINT or SIGTERM it stops accepting connections and lets in-flight ones
finish for up to --drain-timeout.

Admin API (--admin-addr): GET /ready, /healthz, /config_dump, /listeners.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.proxyID, "proxy-id", "", "xDS node ID: the sidecar's Consul service ID, e.g. web-1-sidecar-proxy (required)")
	fs.StringSliceVar(&f.xdsAddrs, "xds-addr", nil, "control plane xDS address(es) HOST:PORT, comma-separated; the next one is tried when a connection fails (required)")
	fs.StringVar(&f.adminAddr, "admin-addr", proxy.DefaultAdminAddr, "admin API listen address HOST:PORT")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", proxy.DefaultDrainTimeout, "how long connections may finish after shutdown starts or their listener is removed")
	cmd.MarkFlagRequired("proxy-id")
	cmd.MarkFlagRequired("xds-addr")
	return cmd
}

func run(cmd *cobra.Command, f flags) error {
	logger, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	return proxy.Run(ctx, proxy.Config{
		ProxyID:      f.proxyID,
		XDSAddrs:     f.xdsAddrs,
		AdminAddr:    f.adminAddr,
		DrainTimeout: f.drainTimeout,
		Logger:       logger,
	})
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
