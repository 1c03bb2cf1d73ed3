package traces

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
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
}).ParseFS(templateFS, "templates/*.html"))

func percent(part, whole time.Duration) string {
	if whole <= 0 {
		return "0"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 3, 64)
}

// Viewer serves the trace viewer and its JSON API:
//
//	GET /traces               recent traces, filtered by ?service=&min_duration=&errors=1
//	GET /traces/{id}          one trace as a waterfall
//	GET /api/traces           the same list as JSON
//	GET /api/traces/{id}      one trace's waterfall rows as JSON
func Viewer(store *Store) http.Handler {
	v := &viewer{store: store}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /traces", v.list)
	mux.HandleFunc("GET /traces/{id}", v.trace)
	mux.HandleFunc("GET /api/traces", v.listJSON)
	mux.HandleFunc("GET /api/traces/{id}", v.traceJSON)
	return mux
}

type viewer struct{ store *Store }

// parseFilter reads a Filter from query parameters, naming a bad one.
func parseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{Service: q.Get("service"), ErrorsOnly: q.Get("errors") == "1" || q.Get("errors") == "true"}
	if v := q.Get("min_duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return f, fmt.Errorf("min_duration %q: want a duration like 50ms", v)
		}
		f.MinDuration = d
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

func (v *viewer) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data := struct {
		Filter   Filter
		MinDur   string
		Traces   []Summary
		Services []string
		Held     int
	}{Filter: f, Traces: v.store.Search(f), Services: v.services(), Held: v.store.Len()}
	if f.MinDuration > 0 {
		data.MinDur = f.MinDuration.String()
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

func (v *viewer) trace(w http.ResponseWriter, r *http.Request) {
	spans, ok := v.store.Trace(r.PathValue("id"))
	if !ok {
		http.Error(w, "trace "+r.PathValue("id")+" is not held (evicted, or never received)", http.StatusNotFound)
		return
	}
	sum := summarize(spans)
	render(w, "trace.html", struct {
		Summary Summary
		Rows    []Row
	}{sum, Waterfall(spans)})
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
	writeJSON(w, struct {
		Summary Summary `json:"summary"`
		Rows    []Row   `json:"rows"`
	}{summarize(spans), Waterfall(spans)})
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
