// Package traces is the control plane's embedded trace backend: it receives
// OTLP spans from sidecars, keeps a bounded set of recent traces in memory,
// and answers queries for the trace viewer and `weft traces`.
package traces

import (
	"container/list"
	"sort"
	"sync"
	"time"
)

// Span is one span as the viewer shows it.
type Span struct {
	TraceID       string            `json:"trace_id"`
	SpanID        string            `json:"span_id"`
	ParentSpanID  string            `json:"parent_span_id,omitempty"`
	Service       string            `json:"service"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end"`
	Error         bool              `json:"error"`
	StatusMessage string            `json:"status_message,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	Events        []Event           `json:"events,omitempty"`
}

// Event is a span event: something that happened at a point of the span
// (a retry, a timeout, a local reply), with its attributes.
type Event struct {
	Time       time.Time         `json:"time"`
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Duration is how long the span took.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Limits bound the store's memory.
type Limits struct {
	MaxTraces        int // oldest traces are evicted beyond this; default 5,000
	MaxSpansPerTrace int // further spans of a trace are dropped and counted; default 1,000
}

// Store keeps recent traces. It is safe for concurrent use.
type Store struct {
	limits Limits

	mu      sync.Mutex
	byID    map[string]*list.Element // of *trace
	order   *list.List               // least recently started trace first
	dropped int64                    // spans dropped by MaxSpansPerTrace
}

type trace struct {
	id    string
	spans []Span
}

// NewStore returns an empty store.
func NewStore(l Limits) *Store {
	if l.MaxTraces <= 0 {
		l.MaxTraces = 5000
	}
	if l.MaxSpansPerTrace <= 0 {
		l.MaxSpansPerTrace = 1000
	}
	return &Store{limits: l, byID: map[string]*list.Element{}, order: list.New()}
}

// Add stores spans, evicting the oldest traces beyond the limit.
func (s *Store) Add(spans []Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		el, ok := s.byID[sp.TraceID]
		if !ok {
			el = s.order.PushBack(&trace{id: sp.TraceID})
			s.byID[sp.TraceID] = el
		}
		t := el.Value.(*trace)
		if len(t.spans) >= s.limits.MaxSpansPerTrace {
			s.dropped++
			continue
		}
		t.spans = append(t.spans, sp)
	}
	for s.order.Len() > s.limits.MaxTraces {
		oldest := s.order.Front()
		s.order.Remove(oldest)
		delete(s.byID, oldest.Value.(*trace).id)
	}
}

// Trace returns a copy of a trace's spans, sorted by start time.
func (s *Store) Trace(id string) ([]Span, bool) {
	s.mu.Lock()
	el, ok := s.byID[id]
	var spans []Span
	if ok {
		spans = append(spans, el.Value.(*trace).spans...)
	}
	s.mu.Unlock()
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	return spans, ok
}

// Len is the number of traces held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// Dropped is the number of spans dropped because their trace was full.
func (s *Store) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}
