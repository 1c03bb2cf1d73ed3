package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weft-mesh/weft/internal/browsertest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestTap: `weft tap --to api` prints live requests to api as the
// sidecars serve them (web → api, on a real mesh), and the control
// plane's /tap page shows them arriving.
func TestTap(t *testing.T) {
	m, webURL := chainMesh(t, meshOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	traffic := func(ctx context.Context) {
		for ctx.Err() == nil {
			get(t, webURL)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	t.Cleanup(stopTraffic)
	go traffic(trafficCtx)

	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "weft"), "tap", "--admin-addr", m.cpAdmin, "--to", "api", "--count", "3")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("weft tap: %v\n%s", err, stderr.String())
	}
	t.Logf("weft tap --to api:\n%s%s", stderr.String(), strings.Join(lines, "\n"))
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(l, "outbound web → api GET /order 200") || !strings.Contains(l, "upstream=127.0.0.1:") || !strings.Contains(l, "trace=") {
			t.Errorf("line %q, want web's outbound GET /order to api answered 200, its upstream and trace", l)
		}
	}
	if !strings.Contains(stderr.String(), "tapping 3 of 3 connected sidecars") {
		t.Errorf("weft tap said %q, want it tapping the 3 sidecars", stderr.String())
	}

	poll.Until(t, 30*time.Second, "the CLI's tap ended with it", func() error {
		if n := metricValue(t, m.cpAdmin, "weft_cp_taps_running"); n != 0 {
			return fmt.Errorf("%v taps running", n)
		}
		return nil
	})

	// The page, in a tab of its own: closing it ends its tap.
	bctx, closeTab := chromedp.NewContext(browsertest.New(t, time.Minute))
	browsertest.Run(t, bctx, chromedp.Navigate("http://"+m.cpAdmin+"/tap?to=db"))
	poll.Until(t, 30*time.Second, "requests on the /tap page", func() error {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.tap-row").length`))
		if err == nil && n < 3 {
			err = fmt.Errorf("%d rows", n)
		}
		return err
	})
	row := browsertest.Run(t, bctx, chromedp.Text(chromedp.CSS("tr.tap-row")))
	state := browsertest.Run(t, bctx, chromedp.Text(chromedp.ID("state")))
	browsertest.Screenshot(t, bctx, "e2e-tap.png")
	if !strings.Contains(row, "api") || !strings.Contains(row, "db") || !strings.Contains(row, "GET") || !strings.Contains(row, "200") {
		t.Errorf("tap row %q, want api → db GET … 200", row)
	}
	if !strings.Contains(state, "tapping 3 of 3") {
		t.Errorf("tap page state %q", state)
	}

	// When no one taps, no tap runs: the page's tap ended with the page.
	stopTraffic()
	closeTab()
	poll.Until(t, 30*time.Second, "no tap left running", func() error {
		if n := metricValue(t, m.cpAdmin, "weft_cp_taps_running"); n != 0 {
			return fmt.Errorf("%v taps running", n)
		}
		return nil
	})
	if n := metricValue(t, m.cpAdmin, "weft_cp_tap_streams"); n != 3 {
		t.Errorf("weft_cp_tap_streams = %v, want the 3 sidecars' streams", n)
	}
}
