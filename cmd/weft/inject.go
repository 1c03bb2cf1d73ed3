package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weft-mesh/weft/inject"
)

func newInjectCommand() *cobra.Command {
	cfg := inject.DefaultConfig()
	var file string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "inject [-f FILE]",
		Short: "Add Weft's sidecar to the pods of Kubernetes YAML (stdin to stdout)",
		Long: `Read Kubernetes YAML (several documents separated by ---) and write it back
with Weft's sidecar added to every Pod and pod template: Deployments,
StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs. Other documents
pass through unchanged. Pods annotated weft.io/inject: "false", pods on the
host network and pods already injected are left alone, so injecting twice
is injecting once. What happened to each workload is reported on stderr.

  kubectl get deploy web -o yaml | weft inject | kubectl apply -f -

Pod annotations: weft.io/upstreams ("api:9191,db:5432"), weft.io/transparent,
weft.io/exclude-outbound-ports, weft.io/exclude-inbound-ports,
weft.io/proxy-cpu, weft.io/proxy-memory, weft.io/service-name,
weft.io/service-port, weft.io/sidecar-mode (native or classic).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			results, err := inject.Manifests(in, cmd.OutOrStdout(), cfg)
			if !quiet {
				report(cmd.ErrOrStderr(), results)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "-", `YAML to read; "-" is stdin`)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not report what was injected on stderr")
	addInjectFlags(cmd.Flags(), &cfg)
	return cmd
}

func report(w io.Writer, results []inject.DocResult) {
	for _, r := range results {
		if r.Kind == "List" {
			report(w, r.Items)
			continue
		}
		fmt.Fprintf(w, "%s/%s: %s\n", r.Kind, r.Name, r.Result)
	}
}

// addInjectFlags binds the injection settings shared by weft inject and
// weft injector to cfg, with cfg's values as defaults.
func addInjectFlags(fs *pflag.FlagSet, cfg *inject.Config) {
	fs.StringVar(&cfg.ProxyImage, "proxy-image", cfg.ProxyImage, "image holding /weft-proxy and /weft (sidecar and membership containers)")
	fs.StringVar(&cfg.RedirectImage, "redirect-image", cfg.RedirectImage, "image holding /weft and iptables (transparent-proxy init container)")
	fs.StringVar(&cfg.XDSAddr, "xds-addr", cfg.XDSAddr, "the control plane's xDS address as pods reach it")
	fs.StringVar(&cfg.ConsulAddr, "consul-addr", cfg.ConsulAddr, "the Consul agent's HTTP address as pods reach it; $(HOST_IP) is the pod's node")
	fs.StringVar((*string)(&cfg.Mode), "sidecar-mode", string(cfg.Mode), "native (init containers with restartPolicy Always, Kubernetes ≥ 1.29) or classic (containers)")
	fs.BoolVar(&cfg.Transparent, "transparent", cfg.Transparent, "redirect pods' traffic through the proxy unless they set weft.io/transparent")
	fs.StringVar(&cfg.ProxyCPU, "proxy-cpu", cfg.ProxyCPU, "the proxy's CPU request (weft.io/proxy-cpu overrides)")
	fs.StringVar(&cfg.ProxyMemory, "proxy-memory", cfg.ProxyMemory, "the proxy's memory request and limit (weft.io/proxy-memory overrides)")
	fs.IntVar(&cfg.PublicPort, "public-port", cfg.PublicPort, "the sidecar's inbound mTLS port")
	fs.IntVar(&cfg.AdminPort, "admin-port", cfg.AdminPort, "the sidecar's admin port, probed by the kubelet")
	fs.IntVar(&cfg.OutboundPort, "outbound-port", cfg.OutboundPort, "where transparent mode sends outbound TCP")
	fs.Int64Var(&cfg.ProxyUID, "proxy-uid", cfg.ProxyUID, "user the sidecars run as; its traffic is never redirected")
	fs.DurationVar(&cfg.DeregisterAfter, "deregister-after", cfg.DeregisterAfter, "how long a pod's registration may stay critical before Consul removes it (minimum 1m)")
}
