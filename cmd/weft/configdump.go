package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/controlplane"
)

func newConfigDumpCommand() *cobra.Command {
	var adminAddr, typ string
	cmd := &cobra.Command{
		Use:   "config-dump PROXY_ID",
		Short: "Print the xDS resources the control plane serves to one proxy",
		Long: `Print, as JSON, the Envoy v3 resources the control plane serves to a proxy
(listeners, clusters, load assignments, route configurations and trust
bundles) with each type's version, from the control plane's admin API
(GET /config_dump/{proxy}). weft proxy-status shows which of those versions
the proxy accepted; the proxy's own view of what it applied is its admin
API's /config_dump.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dump controlplane.ConfigDump
			if err := getJSON(cmd.Context(), "http://"+adminAddr+"/config_dump/"+args[0], &dump); err != nil {
				return err
			}
			var out any = dump
			if typ != "" {
				d, ok := dump.Types[typ]
				if !ok {
					return fmt.Errorf("--type %q: want one of %s", typ, strings.Join(slices.Sorted(maps.Keys(dump.Types)), ", "))
				}
				out = d
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	cmd.Flags().StringVar(&adminAddr, "admin-addr", "127.0.0.1:15000", "the control plane's admin address")
	cmd.Flags().StringVar(&typ, "type", "", "print one type only: Listener, Cluster, ClusterLoadAssignment, RouteConfiguration or Secret")
	return cmd
}
