package traces

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weft-mesh/weft/internal/browsertest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestViewerInBrowser loads the trace viewer in headless Chromium, filters
// to errors, opens the failing trace and checks its waterfall shows every
// hop with its service and status.
func TestViewerInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	store := NewStore(Limits{})
	failing := strings.Repeat("ab", 16)
	spans := chain(failing, time.Now().Add(-2*time.Second))
	spans[2].Attributes = map[string]string{"http.route": "/items/*", "weft.peer.spiffe_id": "spiffe://weft.local/ns/default/dc/dc1/svc/web"}
	spans[2].Events = []Event{{Time: spans[2].Start.Add(time.Millisecond), Name: "upstream_attempt", Attributes: map[string]string{"weft.attempt": "1"}}}
	store.Add(spans)
	store.Add([]Span{{TraceID: strings.Repeat("cd", 16), SpanID: "01", Service: "web", Name: "GET /health",
		Start: time.Now().Add(-time.Second), End: time.Now().Add(-time.Second + time.Millisecond)}})
	srv := httptest.NewServer(Viewer(store))
	defer srv.Close()

	ctx := browsertest.New(t, 60*time.Second)

	run(t, ctx, chromedp.Navigate(srv.URL+"/traces"))
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("traces")))
	all := run(t, ctx, chromedp.Nodes(chromedp.CSSAll("tr.trace-row")))
	run(t, ctx, chromedp.Click(chromedp.ID("errors")))
	run(t, ctx, chromedp.Submit(chromedp.ID("filters")))
	// The checkbox is already checked on the old page: wait for the
	// filtered page itself (its URL carries the filter) to be loaded.
	waitForFilteredPage(t, ctx)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("input#errors:checked")))
	errorsOnly := run(t, ctx, chromedp.Nodes(chromedp.CSSAll("tr.trace-row")))
	run(t, ctx, chromedp.Click(chromedp.CSS("tr.trace-row a")))
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("waterfall")))
	header := run(t, ctx, chromedp.Text(chromedp.CSS("h1")))
	rows := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr.span-row")].map(r => r.innerText.replace(/\s+/g, " ").trim())`))
	// Clicking api's span shows its attributes and events.
	run(t, ctx, chromedp.Click(chromedp.CSS(`tr.span-row[data-span-id="03"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("details-03")))
	details := run(t, ctx, chromedp.Text(chromedp.ID("details-03")))
	critical := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.span-row.critical").length`))
	browsertest.Screenshot(t, ctx, "trace-viewer.png")
	for _, want := range []string{"http.route", "/items/*", "weft.peer.spiffe_id", "svc/web", "upstream_attempt", "weft.attempt=1"} {
		if !strings.Contains(details, want) {
			t.Errorf("span details %q lack %q", details, want)
		}
	}
	if critical != 4 {
		t.Errorf("%d spans on the critical path, want the chain's 4", critical)
	}

	if len(all) != 2 || len(errorsOnly) != 1 {
		t.Fatalf("list shows %d traces, %d with errors only; want 2 and 1", len(all), len(errorsOnly))
	}
	if header != "web: GET /" {
		t.Fatalf("trace page header %q, want the root span", header)
	}
	want := []string{"web GET /", "web GET api", "api GET /items", "db query"}
	if len(rows) != len(want) {
		t.Fatalf("waterfall rows %q; want %d hops", rows, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(rows[i], w) {
			t.Errorf("row %d = %q, want it to start %q", i, rows[i], w)
		}
	}
	if !strings.Contains(rows[3], "error") || !strings.Contains(rows[0], "ok") {
		t.Errorf("statuses not shown: %q", rows)
	}
}

// waitForFilteredPage polls until the page loaded is the one the filter
// form submitted (its query names the errors filter). Evaluations that
// race with the navigation fail and are retried.
func waitForFilteredPage(t *testing.T, ctx context.Context) {
	t.Helper()
	poll.Until(t, 30*time.Second, "the filtered page loaded", func() error {
		search, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.search : ""`))
		if err == nil && !strings.Contains(search, "errors=") {
			err = fmt.Errorf("search %q", search)
		}
		return err
	})
}

// run runs one browser action, failing the test on error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Run(t, ctx, a)
}
