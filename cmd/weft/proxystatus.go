package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/controlplane"
)

func newProxyStatusCommand() *cobra.Command {
	var adminAddr string
	cmd := &cobra.Command{
		Use:   "proxy-status [PROXY_ID]",
		Short: "Show every connected proxy's xDS sync state: ACKed versions and NACKs per type",
		Long: `Show the proxies connected to the control plane, the version each has
ACKed per resource type, and the last configuration each rejected (NACK) with
its error, like istioctl proxy-status, and how many problems its last
translation had: parts of its registration left out, or config-entry fields
set that Weft does not apply. Given a proxy ID, show only that one, with full
NACK messages, every problem and, for a proxyless gRPC client, the resources it
subscribed to per type, those it was sent, and those it was not (the mesh
has no such service, or the answer is on its way).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var proxies []controlplane.ProxyStatus
			if err := getJSON(cmd.Context(), "http://"+adminAddr+"/proxies", &proxies); err != nil {
				return err
			}
			if len(args) == 1 {
				for _, p := range proxies {
					if p.ID == args[0] {
						printProxyDetail(cmd.OutOrStdout(), p)
						return nil
					}
				}
				return fmt.Errorf("proxy %q is not connected to the control plane at %s", args[0], adminAddr)
			}
			printProxyTable(cmd.OutOrStdout(), proxies)
			return nil
		},
	}
	cmd.Flags().StringVar(&adminAddr, "admin-addr", "127.0.0.1:15000", "the control plane's admin address")
	return cmd
}

var statusTypes = []string{"Listener", "Cluster", "ClusterLoadAssignment", "RouteConfiguration", "Secret"}

func printProxyTable(out io.Writer, proxies []controlplane.ProxyStatus) {
	if len(proxies) == 0 {
		fmt.Fprintln(out, "no proxies connected")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tKIND\tCONNECTED\tLDS\tCDS\tEDS\tRDS\tSDS\tNACKS\tPROBLEMS")
	for _, p := range proxies {
		row := []string{p.ID, kind(p), time.Since(p.Connected).Round(time.Second).String()}
		var nacked []string
		for _, typ := range statusTypes {
			ts := typeSync(p, typ)
			row = append(row, syncState(ts))
			if ts != nil && ts.LastNack != "" {
				nacked = append(nacked, shortName(typ))
			}
		}
		row = append(row, strings.Join(nacked, ","), problemCount(p))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func printProxyDetail(out io.Writer, p controlplane.ProxyStatus) {
	fmt.Fprintf(out, "proxy %s: %d stream(s), connected %s\n", p.ID, p.Streams, p.Connected.Format(time.RFC3339))
	types := make([]string, 0, len(p.Types))
	for t := range p.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		ts := p.Types[t]
		fmt.Fprintf(out, "  %s\n    acked version: %s\n", t, orDash(ts.AckedVersion))
		if ts.LastNack != "" {
			fmt.Fprintf(out, "    last NACK of version %s at %s:\n      %s\n", ts.NackVersion, ts.NackAt.Format(time.RFC3339), ts.LastNack)
		}
		if p.Proxyless {
			printSubscription(out, ts)
		}
	}
	if len(p.Routes) > 0 {
		fmt.Fprintf(out, "  %s routes:\n", p.Kind)
		for _, r := range p.Routes {
			fmt.Fprintf(out, "    %s\n", r)
		}
	}
	if len(p.Problems) > 0 {
		fmt.Fprintf(out, "  problems (each says what was left out or kept; docs/consul.md lists config-entry fields):\n")
		for _, msg := range p.Problems {
			fmt.Fprintf(out, "    - %s\n", msg)
		}
	}
}

// problemCount is the number of a proxy's problems, "-" for none.
func problemCount(p controlplane.ProxyStatus) string {
	if len(p.Problems) == 0 {
		return "-"
	}
	return strconv.Itoa(len(p.Problems))
}

// printSubscription shows what a proxyless client subscribed to of one
// type and what it was sent.
func printSubscription(out io.Writer, ts *controlplane.TypeSync) {
	fmt.Fprintf(out, "    subscribed: %s\n", names(ts.Subscribed))
	if ts.SentVersion != "" {
		fmt.Fprintf(out, "    sent (version %s at %s): %s\n", ts.SentVersion, ts.SentAt.Format(time.RFC3339), names(ts.Sent))
	} else {
		fmt.Fprintln(out, "    sent: -")
	}
	if len(ts.Missing) > 0 {
		fmt.Fprintf(out, "    not sent (no such resource, or not answered yet): %s\n", names(ts.Missing))
	}
}

func names(n []string) string {
	if len(n) == 0 {
		return "-"
	}
	return strings.Join(n, ", ")
}

func kind(p controlplane.ProxyStatus) string {
	switch {
	case p.Proxyless:
		return "proxyless"
	case p.Kind != "":
		return p.Kind
	}
	return "sidecar"
}

func typeSync(p controlplane.ProxyStatus, short string) *controlplane.TypeSync {
	for t, ts := range p.Types {
		if strings.HasSuffix(t, "."+short) {
			return ts
		}
	}
	return nil
}

// syncState is "SYNCED <version>" or "NACKED", "-" when never sent.
func syncState(ts *controlplane.TypeSync) string {
	switch {
	case ts == nil || (ts.AckedVersion == "" && ts.LastNack == ""):
		return "-"
	case ts.LastNack != "" && ts.NackAt.After(ts.AckedAt):
		return "NACKED " + short(ts.NackVersion)
	}
	return "SYNCED " + short(ts.AckedVersion)
}

func shortName(typ string) string {
	return map[string]string{"Listener": "LDS", "Cluster": "CDS", "ClusterLoadAssignment": "EDS", "RouteConfiguration": "RDS", "Secret": "SDS"}[typ]
}

func short(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
