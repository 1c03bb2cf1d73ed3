package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/controlplane/bootstrap"
)

func newEnvoyBootstrapCommand() *cobra.Command {
	var e bootstrap.Envoy
	cmd := &cobra.Command{
		Use:   "envoy-bootstrap",
		Short: "Print an Envoy bootstrap that points Envoy at Weft's control plane, to run Envoy as the sidecar",
		Long: `Print an Envoy v3 bootstrap (JSON) for a sidecar: node ID = the sidecar's
Consul service ID, LDS and CDS over ADS from the control plane. Weft never
sends private keys over xDS, so Envoy reads its certificate (the weft-leaf
secret) from --leaf-cert and --leaf-key files on its host.

  weft envoy-bootstrap --proxy-id web-1-sidecar-proxy > envoy.json && envoy -c envoy.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := bootstrap.EnvoyJSON(e)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&e.ProxyID, "proxy-id", "", "the sidecar's Consul service ID (required)")
	fl.StringVar(&e.Service, "service", "", "the service the sidecar fronts (the node's cluster)")
	fl.StringVar(&e.XDSAddr, "xds-addr", "127.0.0.1:15010", "the control plane's xDS address")
	fl.StringVar(&e.AdminAddr, "admin-addr", "127.0.0.1:19000", "Envoy's admin address")
	fl.StringVar(&e.LeafCert, "leaf-cert", "", "PEM file of the sidecar's certificate chain")
	fl.StringVar(&e.LeafKey, "leaf-key", "", "PEM file of the sidecar's private key")
	cmd.MarkFlagRequired("proxy-id")
	return cmd
}

func newGRPCBootstrapCommand() *cobra.Command {
	var g bootstrap.GRPC
	var xds string
	cmd := &cobra.Command{
		Use:   "grpc-bootstrap",
		Short: "Print a gRPC xDS bootstrap for a proxyless gRPC client",
		Long: `Print the bootstrap JSON a grpc-go (or grpc-java, grpc-c++) service reads from
GRPC_XDS_BOOTSTRAP to use Weft's control plane: it can then dial
xds:///<service> for any service in the mesh. With --cert-dir (filled by
'weft cert --service <svc> --out DIR --watch') the client talks mTLS to the
services' sidecars through gRPC's file_watcher certificate provider.

  weft cert --service web --out /var/run/weft --watch &
  weft grpc-bootstrap --service web --cert-dir /var/run/weft > bootstrap.json
  GRPC_XDS_BOOTSTRAP=bootstrap.json ./web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.NodeID == "" {
				host, _ := os.Hostname()
				g.NodeID = "proxyless/" + g.Service + "/" + host
			}
			g.XDSAddrs = strings.Split(xds, ",")
			out, err := bootstrap.GRPCJSON(g)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&g.Service, "service", "", "the client's own service (required)")
	fl.StringVar(&g.NodeID, "node-id", "", "xDS node ID, unique per process (default proxyless/<service>/<hostname>)")
	fl.StringVar(&xds, "xds-addr", "127.0.0.1:15010", "control plane address(es), comma-separated")
	fl.StringVar(&g.CertDir, "cert-dir", "", "directory of cert.pem, key.pem, ca.pem for mTLS (from weft cert)")
	cmd.MarkFlagRequired("service")
	return cmd
}
