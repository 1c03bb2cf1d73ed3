package traces

import (
	"sort"
	"time"
)

// Filter selects traces.
type Filter struct {
	Service     string        // some span of the trace is from this service
	MinDuration time.Duration // the trace lasts at least this long
	ErrorsOnly  bool          // some span of the trace failed
	Limit       int           // at most this many, newest first; default 100
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
}

// Search returns the newest traces matching f.
func (s *Store) Search(f Filter) []Summary {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	s.mu.Lock()
	all := make([][]Span, 0, s.order.Len())
	for el := s.order.Back(); el != nil; el = el.Prev() {
		all = append(all, el.Value.(*trace).spans)
	}
	s.mu.Unlock()

	var out []Summary
	for _, spans := range all {
		sum := summarize(spans)
		if matches(sum, f) {
			out = append(out, sum)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

func matches(s Summary, f Filter) bool {
	if f.ErrorsOnly && !s.Error {
		return false
	}
	if s.Duration < f.MinDuration {
		return false
	}
	if f.Service == "" {
		return true
	}
	for _, svc := range s.Services {
		if svc == f.Service {
			return true
		}
	}
	return false
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
