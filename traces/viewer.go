package traces

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
	},
	"pct":    func(part, whole time.Duration) string { return percent(part, whole) },
	"indent": func(depth int) string { return strconv.FormatFloat(0.6+1.2*float64(depth), 'f', 1, 64) + "em" },
	"ago":    func(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" },
	"pct100": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + " %" },
	"rate":   func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) + "/s" },
}).ParseFS(templateFS, "templates/*.html"))

func percent(part, whole time.Duration) string {
	if whole <= 0 {
		return "0"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 3, 64)
}

// Viewer serves the trace viewer and its JSON API:
//
//	GET /traces               recent traces: a latency scatter plot, the per-service
//	                          table, the service map and the list, filtered by
//	                          ?trace_id=&service=&route=&status=&min_duration=&since=&errors=1
//	GET /traces/{id}          one trace: its span tree on a time axis, each span's
//	                          attributes and events, the critical path
//	GET /api/traces           the list as JSON (same filters)
//	GET /api/traces/{id}      one trace's rows as JSON
//	GET /api/overview         the per-service table and the service map's edges as JSON
func Viewer(store *Store) http.Handler {
	v := &viewer{store: store}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /traces", v.list)
	mux.HandleFunc("GET /traces/{id}", v.trace)
	mux.HandleFunc("GET /api/traces", v.listJSON)
	mux.HandleFunc("GET /api/traces/{id}", v.traceJSON)
	mux.HandleFunc("GET /api/overview", v.overviewJSON)
	return mux
}

type viewer struct{ store *Store }

// parseFilter reads a Filter from query parameters, naming a bad one.
func parseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{
		TraceID: strings.ToLower(strings.TrimSpace(q.Get("trace_id"))), Service: q.Get("service"), Route: q.Get("route"),
		Status: strings.TrimSpace(q.Get("status")), ErrorsOnly: q.Get("errors") == "1" || q.Get("errors") == "true",
	}
	if f.TraceID != "" && !isHex(f.TraceID, 32) {
		return f, fmt.Errorf("trace_id %q: want 32 hexadecimal digits", f.TraceID)
	}
	if st := f.Status; st != "" && st != "error" && st != "ok" {
		if code, err := strconv.Atoi(st); err != nil || code < 100 || code > 599 {
			return f, fmt.Errorf("status %q: want error, ok or an HTTP status code", st)
		}
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"min_duration", &f.MinDuration}, {"since", &f.Since}} {
		if v := q.Get(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed < 0 {
				return f, fmt.Errorf("%s %q: want a duration like 50ms or 15m", d.name, v)
			}
			*d.to = parsed
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return f, fmt.Errorf("limit %q: want a positive number", v)
		}
		f.Limit = n
	}
	return f, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (v *viewer) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	traces := v.store.Search(f)
	ov := v.store.Overview()
	data := struct {
		Filter     Filter
		MinDur     string
		Since      string
		Traces     []Summary
		Services   []string
		Held       int
		Scatter    template.HTML
		Overview   Overview
		ServiceMap template.HTML
	}{Filter: f, Traces: traces, Services: v.services(), Held: v.store.Len(),
		Scatter: scatterSVG(traces), Overview: ov, ServiceMap: serviceMapSVG(ov)}
	if f.MinDuration > 0 {
		data.MinDur = f.MinDuration.String()
	}
	if f.Since > 0 {
		data.Since = f.Since.String()
	}
	render(w, "list.html", data)
}

// services lists every service seen in held traces, for the filter menu.
func (v *viewer) services() []string {
	seen := map[string]bool{}
	for _, s := range v.store.Search(Filter{Limit: 1 << 30}) {
		for _, svc := range s.Services {
			seen[svc] = true
		}
	}
	out := make([]string, 0, len(seen))
	for svc := range seen {
		out = append(out, svc)
	}
	sort.Strings(out)
	return out
}

// spanView is a row of the trace page.
type spanView struct {
	Row
	Critical bool
	Attrs    [][2]string // sorted by key
	Events   []eventView
}

type eventView struct {
	Offset time.Duration // from the span's start
	Name   string
	Attrs  [][2]string
}

func (v *viewer) trace(w http.ResponseWriter, r *http.Request) {
	spans, ok := v.store.Trace(r.PathValue("id"))
	if !ok {
		http.Error(w, "trace "+r.PathValue("id")+" is not held (evicted, or never received)", http.StatusNotFound)
		return
	}
	sum := summarize(spans)
	critical := CriticalPath(spans)
	var rows []spanView
	for _, row := range Waterfall(spans) {
		sv := spanView{Row: row, Critical: critical[row.SpanID], Attrs: sortedAttrs(row.Attributes)}
		for _, e := range row.Events {
			sv.Events = append(sv.Events, eventView{Offset: e.Time.Sub(row.Start), Name: e.Name, Attrs: sortedAttrs(e.Attributes)})
		}
		rows = append(rows, sv)
	}
	var ticks []time.Duration
	for i := 0; i <= 4; i++ {
		ticks = append(ticks, sum.Duration*time.Duration(i)/4)
	}
	render(w, "trace.html", struct {
		Summary Summary
		Rows    []spanView
		Ticks   []time.Duration
	}{sum, rows, ticks})
}

func sortedAttrs(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func (v *viewer) overviewJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, v.store.Overview())
}

func (v *viewer) listJSON(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, v.store.Search(f))
}

func (v *viewer) traceJSON(w http.ResponseWriter, r *http.Request) {
	spans, ok := v.store.Trace(r.PathValue("id"))
	if !ok {
		http.Error(w, "trace not held", http.StatusNotFound)
		return
	}
	critical := CriticalPath(spans)
	ids := make([]string, 0, len(critical))
	for _, row := range Waterfall(spans) {
		if critical[row.SpanID] {
			ids = append(ids, row.SpanID)
		}
	}
	writeJSON(w, struct {
		Summary      Summary  `json:"summary"`
		Rows         []Row    `json:"rows"`
		CriticalPath []string `json:"critical_path"`
	}{summarize(spans), Waterfall(spans), ids})
}

func render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
