package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/inject/redirect"
)

func newRedirectCommand() *cobra.Command {
	var cfg redirect.Config
	var excludeUIDs, inboundPorts, excludeOut, excludeIn string
	var remove, dryRun bool
	cmd := &cobra.Command{
		Use:   "redirect --proxy-uid UID [--outbound-port 15001] [--inbound-port 20000]",
		Short: "Install the iptables rules of transparent proxying (needs NET_ADMIN)",
		Long: `Install iptables rules (nat table, WEFT_* chains) that send this network
namespace's TCP traffic through the sidecar: outbound connections to
--outbound-port, inbound ones to --inbound-port. The sidecar reads each
connection's original destination with SO_ORIGINAL_DST. Never redirected:
traffic of --proxy-uid and --exclude-uids, loopback traffic, and the
excluded ports. Running it again replaces the rules; --remove deletes them.
Only IPv4 is redirected. It runs iptables and iptables-restore.

Injected pods run it in the weft-redirect init container; on a VM the
weft-redirect.service unit runs it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ipt := redirect.Iptables{}
			if remove {
				return ipt.Remove(cmd.Context())
			}
			var err error
			parse := func(flag, s string, into *[]int) {
				if err == nil {
					if *into, err = redirect.ParsePorts(s); err != nil {
						err = fmt.Errorf("--%s: %w", flag, err)
					}
				}
			}
			parse("inbound-ports", inboundPorts, &cfg.InboundPorts)
			parse("exclude-outbound-ports", excludeOut, &cfg.ExcludeOutboundPorts)
			parse("exclude-inbound-ports", excludeIn, &cfg.ExcludeInboundPorts)
			if err != nil {
				return err
			}
			if excludeUIDs != "" {
				cfg.ExcludeUIDs = strings.Split(excludeUIDs, ",")
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if dryRun {
				fmt.Fprint(cmd.OutOrStdout(), cfg.Rules())
				return nil
			}
			return ipt.Apply(cmd.Context(), cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.ProxyUID, "proxy-uid", "", "user (ID or name) the sidecar runs as; its traffic is never redirected (required)")
	fl.StringVar(&excludeUIDs, "exclude-uids", "", "more users whose traffic is never redirected, comma-separated (on a VM: the Consul agent's)")
	fl.IntVar(&cfg.OutboundPort, "outbound-port", 15001, "where outbound TCP goes; 0 leaves outbound traffic alone")
	fl.IntVar(&cfg.InboundPort, "inbound-port", 0, "where inbound TCP goes (the sidecar's public port); 0 leaves inbound traffic alone")
	fl.StringVar(&inboundPorts, "inbound-ports", "", "redirect inbound TCP to these ports only, comma-separated (default: all)")
	fl.StringVar(&excludeOut, "exclude-outbound-ports", "", "outbound destination ports never redirected, comma-separated")
	fl.StringVar(&excludeIn, "exclude-inbound-ports", "", "inbound destination ports never redirected, comma-separated (the admin and probe ports, SSH)")
	fl.BoolVar(&remove, "remove", false, "delete the rules instead")
	fl.BoolVar(&dryRun, "dry-run", false, "print the iptables-restore input instead of applying it")
	return cmd
}
