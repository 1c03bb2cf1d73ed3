package traces

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weft-mesh/weft/internal/poll"
)

// chromium finds Debian's Chromium. Outside CI a machine without it skips
// the browser test; in CI (CI=true) its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs it")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

// artifactDir is where the test keeps its screenshots: $WEFT_ARTIFACTS, or
// out/ at the module root.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("WEFT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestViewerInBrowser loads the trace viewer in headless Chromium, filters
// to errors, opens the failing trace and checks its waterfall shows every
// hop with its service and status.
func TestViewerInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	store := NewStore(Limits{})
	failing := strings.Repeat("ab", 16)
	store.Add(chain(failing, time.Now().Add(-2*time.Second)))
	store.Add([]Span{{TraceID: strings.Repeat("cd", 16), SpanID: "01", Service: "web", Name: "GET /health",
		Start: time.Now().Add(-time.Second), End: time.Now().Add(-time.Second + time.Millisecond)}})
	srv := httptest.NewServer(Viewer(store))
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

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
	shot := run(t, ctx, chromedp.FullScreenshot(100))
	path := filepath.Join(artifactDir(t), "trace-viewer.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the waterfall: %s", path)

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
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}
