package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/controlplane"
	"github.com/weft-mesh/weft/discovery"
	"github.com/weft-mesh/weft/internal/logging"
)

type controlPlaneFlags struct {
	consulAddr  string
	consulToken string
	datacenter  string
	xdsAddr     string
	adminAddr   string
	logLevel    string
	logFormat   string
}

func newControlPlaneCommand() *cobra.Command {
	f := &controlPlaneFlags{}
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Run the xDS control plane, fed by Consul",
		Long: `Run the xDS control plane. It watches Consul with blocking queries and
serves each sidecar's configuration over ADS (Envoy v3 xDS over gRPC).

A sidecar's xDS node ID is its Consul service ID (e.g. web-1-sidecar-proxy).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runControlPlane(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.consulAddr, "consul-addr", envOr("CONSUL_HTTP_ADDR", "127.0.0.1:8500"),
		"Consul HTTP API address, HOST:PORT or a URL (env CONSUL_HTTP_ADDR)")
	fl.StringVar(&f.consulToken, "consul-token", "",
		"Consul ACL token used for watches (default: env CONSUL_HTTP_TOKEN)")
	fl.StringVar(&f.datacenter, "datacenter", "", "Consul datacenter to serve (default: the agent's)")
	fl.StringVar(&f.xdsAddr, "xds-addr", "127.0.0.1:15010", "gRPC address serving ADS to proxies")
	fl.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:15000",
		`HTTP address of the admin API (/ready, /proxies, /catalog); "-" disables it`)
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func runControlPlane(ctx context.Context, f *controlPlaneFlags) error {
	logger, err := logging.New(os.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	client, err := consulClient(f.consulAddr, f.consulToken)
	if err != nil {
		return err
	}
	watcher, err := discovery.New(discovery.Config{Client: client, Datacenter: f.datacenter, Logger: logger})
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	server, err := controlplane.New(controlplane.Config{XDSAddr: f.xdsAddr, AdminAddr: f.adminAddr, Logger: logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var watchErr error
	wg.Go(func() {
		watchErr = watcher.Run(ctx)
		cancel()
	})
	serveErr := server.Run(ctx, watcher)
	cancel()
	wg.Wait()
	if watchErr != nil && !errors.Is(watchErr, context.Canceled) {
		return errors.Join(serveErr, fmt.Errorf("discovery: %w", watchErr))
	}
	return serveErr
}

// consulClient builds a Consul client the way every Consul tool does: the
// environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, …) first,
// then explicit flags.
func consulClient(addr, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	if token != "" {
		cfg.Token = token
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client for %q: %w", cfg.Address, err)
	}
	return c, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
