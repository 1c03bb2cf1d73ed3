package traces

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func span(id, parent, service string, startMS, endMS int) Span {
	return Span{TraceID: "t", SpanID: id, ParentSpanID: parent, Service: service, Name: id,
		Start: t0.Add(time.Duration(startMS) * time.Millisecond), End: t0.Add(time.Duration(endMS) * time.Millisecond)}
}

func TestCriticalPath(t *testing.T) {
	tests := []struct {
		name  string
		spans []Span
		want  []string
	}{
		{"a chain is all critical", chain("t", t0), []string{"01", "02", "03", "04"}},
		{"parallel children: the one finishing last", []Span{
			span("root", "", "web", 0, 100),
			span("fast", "root", "api", 10, 40),
			span("slow", "root", "db", 10, 90),
		}, []string{"root", "slow"}},
		{"sequential children: both, back to back", []Span{
			span("root", "", "web", 0, 100),
			span("first", "root", "api", 5, 45),
			span("second", "root", "db", 50, 95),
		}, []string{"first", "root", "second"}},
		{"a child overlapped by a later one that started before it ended", []Span{
			span("root", "", "web", 0, 100),
			span("retry-1", "root", "api", 5, 60),
			span("retry-2", "root", "api", 50, 95),
		}, []string{"retry-1", "retry-2", "root"}},
		{"a child starting after the cursor is off the path", []Span{
			span("root", "", "web", 0, 100),
			span("early", "root", "api", 0, 30),
			span("covering", "root", "db", 20, 99),
			span("inner", "root", "cache", 40, 50),
		}, []string{"covering", "early", "root"}},
		{"a parent cycle does not loop", []Span{
			span("a", "b", "web", 0, 10), span("b", "a", "api", 0, 10),
		}, []string{"a", "b"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for id := range CriticalPath(tt.spans) {
				got = append(got, id)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("critical path (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOverview(t *testing.T) {
	failing := chain("aa", t0)
	ok := chain("bb", t0.Add(time.Second))
	ok[3].Error = false
	ov := overview([][]Span{failing, ok})
	if ov.Window != time.Second+30*time.Millisecond {
		t.Errorf("window %v, want 1.03s", ov.Window)
	}
	var services []string
	for _, s := range ov.Services {
		services = append(services, s.Service)
	}
	if diff := cmp.Diff([]string{"api", "db", "web"}, services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	db := ov.Services[1]
	if db.Requests != 2 || db.ErrorRate != 0.5 || db.P50 != 20*time.Millisecond || db.P99 != 20*time.Millisecond {
		t.Errorf("db: %+v, want 2 requests, half failed, 20ms", db)
	}
	// web's own client span is not a request of its own: web has one
	// entry span per trace, its root.
	if web := ov.Services[2]; web.Requests != 2 || web.P99 != 30*time.Millisecond {
		t.Errorf("web: %+v, want its 2 roots of 30ms", web)
	}
	want := []Edge{{From: "api", To: "db", Calls: 2, ErrorRate: 0.5, P99: 20 * time.Millisecond}, {From: "web", To: "api", Calls: 2, P99: 24 * time.Millisecond}}
	for i := range want {
		want[i].PerSecond = 2 / ov.Window.Seconds()
	}
	if diff := cmp.Diff(want, ov.Edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
}

func TestSearchByTraceRouteStatusAndWindow(t *testing.T) {
	s := NewStore(Limits{})
	now := time.Now()
	old := chain(strings.Repeat("aa", 16), now.Add(-time.Hour))
	recent := chain(strings.Repeat("bb", 16), now.Add(-time.Minute))
	recent[0].Attributes = map[string]string{"http.route": "/items/*", "http.response.status_code": "200"}
	recent[3].Error = false
	recent[3].Attributes = map[string]string{"http.response.status_code": "503"}
	s.Add(old)
	s.Add(recent)
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"trace ID", Filter{TraceID: strings.Repeat("aa", 16)}, []string{"aa"}},
		{"route of some span", Filter{Route: "/items/*"}, []string{"bb"}},
		{"status code of some span", Filter{Status: "503"}, []string{"bb"}},
		{"status error", Filter{Status: "error"}, []string{"aa"}},
		{"status ok", Filter{Status: "ok"}, []string{"bb"}},
		{"started within", Filter{Since: 10 * time.Minute}, []string{"bb"}},
		{"route and a code it did not answer", Filter{Route: "/items/*", Status: "404"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, sum := range s.Search(tt.f) {
				got = append(got, sum.TraceID[:2])
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if sum := s.Search(Filter{TraceID: strings.Repeat("bb", 16)}); len(sum) != 1 || sum[0].Route != "/items/*" || sum[0].StatusCode != "200" {
		t.Errorf("summary %+v, want the root's route and status", sum)
	}
}

func TestParseFilterNamesTheBadParameter(t *testing.T) {
	for _, tt := range []struct{ query, want string }{
		{"trace_id=xyz", `trace_id "xyz": want 32 hexadecimal digits`},
		{"status=teapot", `status "teapot": want error, ok or an HTTP status code`},
		{"status=999", `status "999": want error, ok or an HTTP status code`},
		{"since=yesterday", `since "yesterday": want a duration like 50ms or 15m`},
		{"min_duration=-1s", `min_duration "-1s": want a duration like 50ms or 15m`},
		{"limit=0", `limit "0": want a positive number`},
	} {
		t.Run(tt.query, func(t *testing.T) {
			_, err := parseFilter(httptest.NewRequest("GET", "/traces?"+tt.query, nil))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	f, err := parseFilter(httptest.NewRequest("GET", "/traces?trace_id=+"+strings.Repeat("AB", 16)+"&status=503&since=15m&route=/a", nil))
	if err != nil || f.TraceID != strings.Repeat("ab", 16) || f.Status != "503" || f.Since != 15*time.Minute || f.Route != "/a" {
		t.Errorf("filter %+v, %v", f, err)
	}
}

// TestChartsEscapeWhatTheyShow: service names and span names come from
// sidecars; the SVG must not let them become markup.
func TestChartsEscapeWhatTheyShow(t *testing.T) {
	evil := `<script>alert(1)</script>"`
	spans := chain(strings.Repeat("cc", 16), t0)
	spans[0].Service, spans[0].Name = evil, evil
	ov := overview([][]Span{spans})
	for name, out := range map[string]string{
		"scatter": string(scatterSVG([]Summary{summarize(spans)})),
		"map":     string(serviceMapSVG(ov)),
	} {
		if strings.Contains(out, "<script>") || strings.Contains(out, `"</`) {
			t.Errorf("%s: unescaped input in %s", name, out)
		}
	}
}
