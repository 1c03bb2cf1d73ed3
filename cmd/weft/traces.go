package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/traces"
)

func newTracesCommand() *cobra.Command {
	var adminAddr, service, minDuration string
	var errorsOnly bool
	var limit int
	cmd := &cobra.Command{
		Use:   "traces [TRACE_ID]",
		Short: "List recent traces held by the control plane, or show one as a waterfall",
		Long: `List recent traces the control plane's embedded trace backend holds
(newest first), filtered by service, minimum duration and errors; or, given a
trace ID, print that trace as a waterfall of every hop.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			base := "http://" + adminAddr
			if len(args) == 1 {
				var t struct {
					Summary traces.Summary `json:"summary"`
					Rows    []traces.Row   `json:"rows"`
				}
				if err := getJSON(cmd.Context(), base+"/api/traces/"+url.PathEscape(args[0]), &t); err != nil {
					return err
				}
				printWaterfall(cmd.OutOrStdout(), t.Summary, t.Rows)
				return nil
			}
			q := url.Values{}
			q.Set("limit", fmt.Sprint(limit))
			if service != "" {
				q.Set("service", service)
			}
			if minDuration != "" {
				q.Set("min_duration", minDuration)
			}
			if errorsOnly {
				q.Set("errors", "1")
			}
			var list []traces.Summary
			if err := getJSON(cmd.Context(), base+"/api/traces?"+q.Encode(), &list); err != nil {
				return err
			}
			printTraceList(cmd.OutOrStdout(), list)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&adminAddr, "admin-addr", "127.0.0.1:15000", "the control plane's admin address")
	fl.StringVar(&service, "service", "", "only traces with a span from this service")
	fl.StringVar(&minDuration, "min-duration", "", "only traces at least this long, e.g. 50ms")
	fl.BoolVar(&errorsOnly, "errors", false, "only traces with a failed span")
	fl.IntVar(&limit, "limit", 20, "at most this many traces")
	return cmd
}

func printTraceList(out io.Writer, list []traces.Summary) {
	if len(list) == 0 {
		fmt.Fprintln(out, "no traces match")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRACE ID\tROOT\tDURATION\tSPANS\tSTATUS\tSERVICES\tSTARTED")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s: %s\t%s\t%d\t%s\t%s\t%s ago\n", t.TraceID, t.RootService, t.RootName, ms(t.Duration),
			t.SpanCount, status(t.Error), strings.Join(t.Services, ","), time.Since(t.Start).Round(time.Second))
	}
	tw.Flush()
}

// printWaterfall draws each span indented under its parent with a bar
// placed on a 40-column timeline of the whole trace.
func printWaterfall(out io.Writer, sum traces.Summary, rows []traces.Row) {
	fmt.Fprintf(out, "trace %s  %s: %s  %s  %d spans  %s\n\n", sum.TraceID, sum.RootService, sum.RootName, ms(sum.Duration), sum.SpanCount, status(sum.Error))
	const width = 40
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		from, to := 0, width
		if sum.Duration > 0 {
			from = int(int64(width) * int64(r.Offset) / int64(sum.Duration))
			to = from + max(1, int(int64(width)*int64(r.Duration)/int64(sum.Duration)))
		}
		bar := strings.Repeat(" ", min(from, width)) + strings.Repeat("█", max(0, min(to, width)-from))
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t|%-*s|\n", strings.Repeat("  ", r.Depth), r.Service, r.Name, ms(r.Duration), status(r.Error), width, bar)
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func status(failed bool) string {
	if failed {
		return "ERROR"
	}
	return "ok"
}
