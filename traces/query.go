package traces

import (
	"slices"
	"sort"
	"time"
)

// Filter selects traces.
type Filter struct {
	TraceID     string        // this trace only
	Service     string        // some span of the trace is from this service
	Route       string        // some span of the trace matched this route (http.route)
	MinDuration time.Duration // the trace lasts at least this long
	ErrorsOnly  bool          // some span of the trace failed
	// Status is "error", "ok", or an HTTP status code that some span of
	// the trace answered (http.response.status_code).
	Status string
	Since  time.Duration // the trace started at most this long ago; 0: any time
	Limit  int           // at most this many, newest first; default 100
}

// Summary describes one trace in a list.
type Summary struct {
	TraceID     string        `json:"trace_id"`
	RootService string        `json:"root_service"`
	RootName    string        `json:"root_name"`
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"duration_ns"`
	SpanCount   int           `json:"span_count"`
	Error       bool          `json:"error"`
	Services    []string      `json:"services"`
	// Route and StatusCode are the root span's http.route and
	// http.response.status_code, when it has them.
	Route      string `json:"route,omitempty"`
	StatusCode string `json:"status_code,omitempty"`
}

// all returns every held trace's spans, newest first. A trace's spans up
// to the length returned are never modified: Add only appends.
func (s *Store) all() [][]Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([][]Span, 0, s.order.Len())
	for el := s.order.Back(); el != nil; el = el.Prev() {
		all = append(all, el.Value.(*trace).spans)
	}
	return all
}

// Search returns the newest traces matching f.
func (s *Store) Search(f Filter) []Summary {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Summary
	now := time.Now()
	for _, spans := range s.all() {
		sum := summarize(spans)
		if matches(sum, spans, f, now) {
			out = append(out, sum)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

func matches(s Summary, spans []Span, f Filter, now time.Time) bool {
	switch {
	case f.TraceID != "" && s.TraceID != f.TraceID,
		f.ErrorsOnly && !s.Error,
		f.Status == "error" && !s.Error,
		f.Status == "ok" && s.Error,
		s.Duration < f.MinDuration,
		f.Since > 0 && now.Sub(s.Start) > f.Since,
		f.Service != "" && !slices.Contains(s.Services, f.Service):
		return false
	}
	code := f.Status != "" && f.Status != "error" && f.Status != "ok"
	if f.Route == "" && !code {
		return true
	}
	routeOK, codeOK := f.Route == "", !code
	for _, sp := range spans {
		routeOK = routeOK || sp.Attributes["http.route"] == f.Route
		codeOK = codeOK || sp.Attributes["http.response.status_code"] == f.Status
	}
	return routeOK && codeOK
}

// summarize reads spans without modifying them. The root is the span with
// no parent in the trace (or the earliest, while the root has not arrived).
func summarize(spans []Span) Summary {
	ids := make(map[string]bool, len(spans))
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	sum := Summary{SpanCount: len(spans)}
	services := map[string]bool{}
	var root *Span
	var start, end time.Time
	for i := range spans {
		sp := &spans[i]
		sum.TraceID = sp.TraceID
		services[sp.Service] = true
		sum.Error = sum.Error || sp.Error
		if start.IsZero() || sp.Start.Before(start) {
			start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		isRoot := sp.ParentSpanID == "" || !ids[sp.ParentSpanID]
		if isRoot && (root == nil || sp.Start.Before(root.Start)) {
			root = sp
		}
	}
	if root != nil {
		sum.RootService, sum.RootName = root.Service, root.Name
		sum.Route, sum.StatusCode = root.Attributes["http.route"], root.Attributes["http.response.status_code"]
	}
	sum.Start, sum.Duration = start, end.Sub(start)
	for svc := range services {
		sum.Services = append(sum.Services, svc)
	}
	sort.Strings(sum.Services)
	return sum
}

// Row is one span of a waterfall, with its depth in the call tree and its
// offset from the trace's start.
type Row struct {
	Span
	Depth    int           `json:"depth"`
	Offset   time.Duration `json:"offset_ns"`
	Duration time.Duration `json:"duration_ns"`
}

// Waterfall orders a trace's spans depth-first under their parents, each
// level by start time, for display.
func Waterfall(spans []Span) []Row {
	if len(spans) == 0 {
		return nil
	}
	children := map[string][]int{}
	ids := map[string]bool{}
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	var roots []int
	start := spans[0].Start
	for i, sp := range spans {
		if sp.Start.Before(start) {
			start = sp.Start
		}
		if sp.ParentSpanID == "" || !ids[sp.ParentSpanID] {
			roots = append(roots, i)
		} else {
			children[sp.ParentSpanID] = append(children[sp.ParentSpanID], i)
		}
	}
	byStart := func(idx []int) {
		sort.SliceStable(idx, func(a, b int) bool { return spans[idx[a]].Start.Before(spans[idx[b]].Start) })
	}
	rows := make([]Row, 0, len(spans))
	visited := make([]bool, len(spans))
	var visit func(i, depth int)
	visit = func(i, depth int) {
		if visited[i] {
			return
		}
		visited[i] = true
		sp := spans[i]
		rows = append(rows, Row{Span: sp, Depth: depth, Offset: sp.Start.Sub(start), Duration: sp.Duration()})
		kids := children[sp.SpanID]
		byStart(kids)
		for _, k := range kids {
			visit(k, depth+1)
		}
	}
	byStart(roots)
	for _, r := range roots {
		visit(r, 0)
	}
	for i := range spans { // spans in a parent cycle: shown, not lost
		visit(i, 0)
	}
	return rows
}
