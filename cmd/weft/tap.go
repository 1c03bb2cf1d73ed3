package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/controlplane"
)

func newTapCommand() *cobra.Command {
	var adminAddr, to, from, path, status, token string
	var maxRPS, count int
	cmd := &cobra.Command{
		Use:   "tap",
		Short: "Stream live requests as the sidecars serve them",
		Long: `Stream the requests the mesh serves, live, through the control plane: one
line per request with its source, destination, method, path, status,
latency and x-weft-error reason, whether or not it was sampled for tracing.

--to SERVICE shows requests to SERVICE as every caller's sidecar sends them
(so requests refused or failed before reaching it are seen too); --from
SERVICE shows SERVICE's outbound requests; with neither, every sidecar's
inbound requests. Sidecars send tap events only while someone taps, at most
--max-rps per sidecar: a busy service is sampled, and the stream says how
many requests it dropped.

A tap reveals paths and caller identities: with Consul ACLs on, the token
(--token, or $CONSUL_HTTP_TOKEN) must be allowed service:write on the
tapped services (every service when neither --to nor --from is given).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"to": to, "from": from, "path": path, "status": status} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("max_rps", fmt.Sprint(maxRPS))
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, "http://"+adminAddr+"/api/tap?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			if token == "" {
				token = os.Getenv("CONSUL_HTTP_TOKEN")
			}
			if token != "" {
				req.Header.Set("X-Consul-Token", token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return fmt.Errorf("tap: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			return printTap(cmd.OutOrStdout(), cmd.ErrOrStderr(), resp.Body, count)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&adminAddr, "admin-addr", "127.0.0.1:15000", "the control plane's admin address")
	fl.StringVar(&to, "to", "", "only requests to this service")
	fl.StringVar(&from, "from", "", "only requests from this service")
	fl.StringVar(&path, "path", "", "only requests whose path starts with this")
	fl.StringVar(&status, "status", "", "only requests whose status is this: 2xx..5xx, error (5xx or an x-weft-error), or a code")
	fl.StringVar(&token, "token", "", "Consul ACL token (default $CONSUL_HTTP_TOKEN)")
	fl.IntVar(&maxRPS, "max-rps", 100, "at most this many requests per second from each sidecar")
	fl.IntVar(&count, "count", 0, "stop after this many requests (0: until interrupted)")
	return cmd
}

// printTap prints a tap stream's lines until it ends or count requests
// were printed.
func printTap(out, errOut io.Writer, stream io.Reader, count int) error {
	sc := bufio.NewScanner(stream)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue // a heartbeat
		}
		var line struct {
			controlplane.TapEvent
			Tap *struct {
				Connected int `json:"sidecars_connected"`
				Tapped    int `json:"sidecars_tapped"`
			} `json:"tap"`
			Dropped uint64 `json:"dropped"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("tap stream: %w", err)
		}
		switch {
		case line.Tap != nil:
			fmt.Fprintf(errOut, "tapping %d of %d connected sidecars; Ctrl-C stops\n", line.Tap.Tapped, line.Tap.Connected)
		case line.Dropped > 0:
			fmt.Fprintf(errOut, "(%d requests not shown: over --max-rps or the tap's buffer)\n", line.Dropped)
		default:
			fmt.Fprintln(out, formatTapEvent(line.TapEvent))
			if n++; count > 0 && n >= count {
				return nil
			}
		}
	}
	return sc.Err()
}

func formatTapEvent(e controlplane.TapEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s → %s %s %s %d", e.Time.Local().Format("15:04:05.000"), e.Direction, e.Source, e.Destination, e.Method, e.Path, e.Status)
	if e.GRPCStatus != "" {
		fmt.Fprintf(&b, " grpc=%s", e.GRPCStatus)
	}
	fmt.Fprintf(&b, " %s", (time.Duration(e.DurationMS * float64(time.Millisecond))).Round(time.Microsecond))
	if e.WeftError != "" {
		fmt.Fprintf(&b, " x-weft-error=%s", e.WeftError)
	}
	if e.Upstream != "" {
		fmt.Fprintf(&b, " upstream=%s", e.Upstream)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " trace=%s", e.TraceID)
	}
	return b.String()
}
