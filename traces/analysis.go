package traces

import (
	"slices"
	"sort"
	"time"
)

// CriticalPath returns the IDs of the spans on a trace's critical path:
// the chain of work that determined how long the trace took. Starting at
// the root, it walks back from the span's end through the children that
// finished last before the cursor, as Jaeger computes it: a child running
// while a later-finishing sibling ran is off the path.
func CriticalPath(spans []Span) map[string]bool {
	on := map[string]bool{}
	if len(spans) == 0 {
		return on
	}
	ids := make(map[string]int, len(spans))
	for i, sp := range spans {
		ids[sp.SpanID] = i
	}
	children := map[string][]int{}
	root := -1
	for i, sp := range spans {
		if _, ok := ids[sp.ParentSpanID]; sp.ParentSpanID != "" && ok && sp.ParentSpanID != sp.SpanID {
			children[sp.ParentSpanID] = append(children[sp.ParentSpanID], i)
			continue
		}
		if root < 0 || sp.End.Sub(sp.Start) > spans[root].End.Sub(spans[root].Start) {
			root = i
		}
	}
	if root < 0 {
		// Every span names a parent held in the trace: a cycle, which
		// sidecars should never send but the store accepts. Start at the
		// longest span.
		root = 0
		for i, sp := range spans {
			if sp.End.Sub(sp.Start) > spans[root].End.Sub(spans[root].Start) {
				root = i
			}
		}
	}
	var walk func(i int, end time.Time)
	walk = func(i int, end time.Time) {
		sp := spans[i]
		if on[sp.SpanID] {
			return // a cycle of parents
		}
		on[sp.SpanID] = true
		kids := slices.Clone(children[sp.SpanID])
		sort.SliceStable(kids, func(a, b int) bool { return spans[kids[a]].End.After(spans[kids[b]].End) })
		cursor := end
		for _, k := range kids {
			c := spans[k]
			if !c.Start.Before(cursor) {
				continue // started after the cursor: overlapped by a later child
			}
			childEnd := c.End
			if childEnd.After(cursor) {
				childEnd = cursor
			}
			walk(k, childEnd)
			cursor = c.Start
		}
	}
	walk(root, spans[root].End)
	return on
}

// entrySpans are the spans where a service's work starts in a trace: the
// root, and every span whose parent is another service's. They stand for
// the requests a service handled or sent.
func entrySpans(spans []Span) []Span {
	service := make(map[string]string, len(spans))
	for _, sp := range spans {
		service[sp.SpanID] = sp.Service
	}
	var out []Span
	for _, sp := range spans {
		if parent, ok := service[sp.ParentSpanID]; !ok || parent != sp.Service {
			out = append(out, sp)
		}
	}
	return out
}

// latencies accumulates durations and errors.
type latencies struct {
	durations []time.Duration
	errors    int
}

func (l *latencies) add(sp Span) {
	l.durations = append(l.durations, sp.Duration())
	if sp.Error {
		l.errors++
	}
}

// quantile is the q-quantile of the durations (nearest rank).
func (l *latencies) quantile(q float64) time.Duration {
	if len(l.durations) == 0 {
		return 0
	}
	d := slices.Clone(l.durations)
	slices.Sort(d)
	i := int(q*float64(len(d))+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

// ServiceStats is what the held traces say of one service.
type ServiceStats struct {
	Service string `json:"service"`
	// Requests counts the service's entry spans: those where its work
	// in a trace starts.
	Requests int `json:"requests"`
	// PerSecond is Requests over the window the held traces span.
	PerSecond float64       `json:"per_second"`
	ErrorRate float64       `json:"error_rate"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
}

// Edge is calls from one service to another, from parent and child spans
// of different services.
type Edge struct {
	From      string        `json:"from"`
	To        string        `json:"to"`
	Calls     int           `json:"calls"`
	PerSecond float64       `json:"per_second"`
	ErrorRate float64       `json:"error_rate"`
	P99       time.Duration `json:"p99_ns"`
}

// Overview is the per-service table and the service map of a set of
// traces.
type Overview struct {
	Window   time.Duration  `json:"window_ns"`
	Services []ServiceStats `json:"services"`
	Edges    []Edge         `json:"edges"`
}

// Overview summarizes the traces held: every service's requests, error
// rate and latency, and the calls between services.
func (s *Store) Overview() Overview {
	return overview(s.all())
}

func overview(traces [][]Span) Overview {
	var first, last time.Time
	byService := map[string]*latencies{}
	type key struct{ from, to string }
	byEdge := map[key]*latencies{}
	for _, spans := range traces {
		index := make(map[string]*Span, len(spans))
		for i := range spans {
			index[spans[i].SpanID] = &spans[i]
			if first.IsZero() || spans[i].Start.Before(first) {
				first = spans[i].Start
			}
			if spans[i].End.After(last) {
				last = spans[i].End
			}
		}
		for _, sp := range entrySpans(spans) {
			l := byService[sp.Service]
			if l == nil {
				l = &latencies{}
				byService[sp.Service] = l
			}
			l.add(sp)
			if parent := index[sp.ParentSpanID]; parent != nil && parent.Service != sp.Service {
				k := key{parent.Service, sp.Service}
				e := byEdge[k]
				if e == nil {
					e = &latencies{}
					byEdge[k] = e
				}
				e.add(sp)
			}
		}
	}
	ov := Overview{Window: last.Sub(first)}
	rate := func(n int) float64 {
		if ov.Window <= 0 {
			return 0
		}
		return float64(n) / ov.Window.Seconds()
	}
	for svc, l := range byService {
		n := len(l.durations)
		ov.Services = append(ov.Services, ServiceStats{Service: svc, Requests: n, PerSecond: rate(n),
			ErrorRate: float64(l.errors) / float64(n), P50: l.quantile(0.5), P99: l.quantile(0.99)})
	}
	sort.Slice(ov.Services, func(i, j int) bool { return ov.Services[i].Service < ov.Services[j].Service })
	for k, l := range byEdge {
		n := len(l.durations)
		ov.Edges = append(ov.Edges, Edge{From: k.from, To: k.to, Calls: n, PerSecond: rate(n),
			ErrorRate: float64(l.errors) / float64(n), P99: l.quantile(0.99)})
	}
	sort.Slice(ov.Edges, func(i, j int) bool {
		a, b := ov.Edges[i], ov.Edges[j]
		return a.From < b.From || a.From == b.From && a.To < b.To
	})
	return ov
}
