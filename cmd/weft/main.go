// Command weft is Weft's control plane and operator CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "weft:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "weft",
		Short: "Weft service mesh: xDS control plane for Consul and operator tools",
		Long: `Weft is a service mesh. Its control plane watches Consul for services,
health, sidecar registrations and config entries, and pushes Envoy v3 xDS
to weft-proxy sidecars (or Envoy, or proxyless gRPC clients).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newControlPlaneCommand(), newCACommand(), newTracesCommand(), newTapCommand(), newProxyStatusCommand(), newConfigDumpCommand(), newEnvoyBootstrapCommand(), newGRPCBootstrapCommand(), newCertCommand())
	root.AddCommand(newInjectCommand(), newInjectorCommand(), newRegisterCommand(), newDeregisterCommand(), newRedirectCommand())
	return root
}
