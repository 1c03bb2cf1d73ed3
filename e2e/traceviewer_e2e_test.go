package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/browsertest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestTraceViewerInBrowser drives the control plane's trace viewer in
// headless Chromium over a real mesh (web → api → db, real Consul): the
// list plots latency and finds a trace by ID; the trace page nests the
// spans of web, api and db, and clicking a span shows the route, the
// upstream instance and the caller's SPIFFE ID; the service map shows
// web → api with its rate; a request an intention denies shows
// rbac_denied. Screenshots are kept as test artifacts.
func TestTraceViewerInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 3*time.Minute)
	m, webURL := chainMesh(t, meshOptions{})
	for range 10 {
		waitHTTP200(t, webURL, 10*time.Second)
	}
	var list []struct {
		TraceID  string   `json:"trace_id"`
		Services []string `json:"services"`
	}
	poll.Until(t, 20*time.Second, "a trace through web, api and db", func() error {
		if err := getJSONInto("http://"+m.cpAdmin+"/api/traces?service=db", &list); err != nil {
			return err
		}
		if len(list) == 0 || len(list[0].Services) != 3 {
			return fmt.Errorf("traces %+v", list)
		}
		return nil
	})
	id := list[0].TraceID
	base := "http://" + m.cpAdmin

	// The list: the scatter plot, the service map, and a search by ID.
	browsertest.Run(t, ctx, chromedp.Navigate(base+"/traces"))
	browsertest.Run(t, ctx, chromedp.WaitVisible(chromedp.ID("scatter")))
	points := browsertest.Run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#scatter circle.pt").length`))
	edge := browsertest.Run(t, ctx, chromedp.Evaluate[string](`(document.querySelector('#service-map g.map-edge[data-from="web"][data-to="api"]') || {}).textContent || ""`))
	browsertest.Screenshot(t, ctx, "e2e-trace-list.png")
	if points < 10 {
		t.Errorf("the scatter plot shows %d traces, want the 10 requests' at least", points)
	}
	if !strings.Contains(edge, "/s") || !strings.Contains(edge, "p99") {
		t.Errorf("service map edge web → api is %q, want its rate and p99", edge)
	}
	browsertest.Run(t, ctx, chromedp.SetValue(chromedp.ID("trace_id"), id))
	browsertest.Run(t, ctx, chromedp.Submit(chromedp.ID("filters")))
	poll.Until(t, 30*time.Second, "the search by trace ID", func() error {
		ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`location.search.includes("trace_id=") ? [...document.querySelectorAll("tr.trace-row")].map(r => r.dataset.traceId) : []`))
		if err == nil && (len(ids) != 1 || ids[0] != id) {
			err = fmt.Errorf("rows %q, want only %s", ids, id)
		}
		return err
	})

	// The trace: nested spans, and a click shows what explains them.
	browsertest.Run(t, ctx, chromedp.Click(chromedp.CSS("tr.trace-row a")))
	browsertest.Run(t, ctx, chromedp.WaitVisible(chromedp.ID("waterfall")))
	type row struct {
		Service, Kind, ID string
		Indent            float64
	}
	rows := browsertest.Run(t, ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("tr.span-row")].map(r => ({
		Service: r.dataset.service, Kind: r.cells[2].innerText, ID: r.dataset.spanId, Indent: parseFloat(r.cells[0].style.paddingLeft)}))`))
	if len(rows) != 4 {
		t.Fatalf("trace rows %+v, want web, api and db's 4 spans", rows)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Indent <= rows[i-1].Indent {
			t.Errorf("row %d (%s %s) is not nested under row %d: %+v", i, rows[i].Service, rows[i].Kind, i-1, rows)
		}
	}
	details := map[string]string{}
	for _, r := range rows {
		browsertest.Run(t, ctx, chromedp.Click(chromedp.CSS(`tr.span-row[data-span-id="`+r.ID+`"]`)))
		browsertest.Run(t, ctx, chromedp.WaitVisible(chromedp.ID("details-"+r.ID)))
		details[r.Service+"/"+r.Kind] = browsertest.Run(t, ctx, chromedp.Text(chromedp.ID("details-"+r.ID)))
	}
	browsertest.Screenshot(t, ctx, "e2e-trace-page.png")
	for key, wants := range map[string][]string{
		"web/CLIENT": {"http.route", "weft.upstream.instance_id", "api-1-sidecar-proxy"},
		"api/SERVER": {"http.route", "weft.peer.spiffe_id", "/svc/web"},
	} {
		for _, w := range wants {
			if !strings.Contains(details[key], w) {
				t.Errorf("%s span details lack %q:\n%s", key, w, details[key])
			}
		}
	}

	// An intention deny: the caller's trace says rbac_denied.
	m.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api", Sources: []*api.SourceIntention{
		{Name: "web", Action: api.IntentionActionDeny},
	}})
	poll.Until(t, 30*time.Second, "a denied request", func() error {
		if code := get(t, webURL); code == http.StatusOK {
			return fmt.Errorf("GET %s: %d, want it denied", webURL, code)
		}
		return nil
	})
	browsertest.Run(t, ctx, chromedp.Navigate(base+"/traces?status=403"))
	browsertest.Run(t, ctx, chromedp.WaitVisible(chromedp.ID("traces")))
	poll.Until(t, 20*time.Second, "the denied request's trace", func() error {
		browsertest.Run(t, ctx, chromedp.Reload())
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.trace-row").length`))
		if err == nil && n == 0 {
			err = fmt.Errorf("no trace with a 403 yet")
		}
		return err
	})
	browsertest.Run(t, ctx, chromedp.Click(chromedp.CSS("tr.trace-row a")))
	browsertest.Run(t, ctx, chromedp.WaitVisible(chromedp.ID("waterfall")))
	page := browsertest.Run(t, ctx, chromedp.Text(chromedp.ID("waterfall")))
	browsertest.Screenshot(t, ctx, "e2e-trace-denied.png")
	if !strings.Contains(page, "rbac_denied") {
		t.Errorf("the denied request's trace does not say rbac_denied:\n%s", page)
	}
}
