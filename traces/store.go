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
	// MaxBytes bounds the size of the spans held (their strings,
	// attributes and events, estimated): the oldest traces are evicted
	// beyond it; default 64 MiB.
	MaxBytes int64
}

// DefaultMaxBytes is Limits.MaxBytes when unset.
const DefaultMaxBytes = 64 << 20

// Store keeps recent traces. It is safe for concurrent use.
type Store struct {
	limits Limits

	mu      sync.Mutex
	byID    map[string]*list.Element // of *trace
	order   *list.List               // least recently started trace first
	bytes   int64                    // estimated size of every span held
	spans   int
	dropped int64 // spans dropped by MaxSpansPerTrace
	evicted int64 // traces evicted by MaxTraces or MaxBytes
}

type trace struct {
	id    string
	spans []Span
	bytes int64
}

// spanOverhead is what a span costs beyond its strings: its struct, its
// slot in the trace's slice and its maps' buckets, roughly.
const spanOverhead = 256

// size estimates the memory a span holds.
func size(sp *Span) int64 {
	n := spanOverhead + len(sp.TraceID) + len(sp.SpanID) + len(sp.ParentSpanID) + len(sp.Service) +
		len(sp.Name) + len(sp.Kind) + len(sp.StatusMessage) + attrsSize(sp.Attributes)
	for _, e := range sp.Events {
		n += 64 + len(e.Name) + attrsSize(e.Attributes)
	}
	return int64(n)
}

func attrsSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += 32 + len(k) + len(v)
	}
	return n
}

// NewStore returns an empty store.
func NewStore(l Limits) *Store {
	if l.MaxTraces <= 0 {
		l.MaxTraces = 5000
	}
	if l.MaxSpansPerTrace <= 0 {
		l.MaxSpansPerTrace = 1000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
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
		n := size(&sp)
		t.bytes += n
		s.bytes += n
		s.spans++
	}
	// The newest trace stays even when it alone is over MaxBytes.
	for s.order.Len() > s.limits.MaxTraces || s.bytes > s.limits.MaxBytes && s.order.Len() > 1 {
		oldest := s.order.Front()
		t := oldest.Value.(*trace)
		s.order.Remove(oldest)
		delete(s.byID, t.id)
		s.bytes -= t.bytes
		s.spans -= len(t.spans)
		s.evicted++
	}
}

// Stats describes what the store holds and has let go.
type Stats struct {
	Traces, Spans int
	Bytes         int64 // estimated
	// SpansDropped were over MaxSpansPerTrace; TracesEvicted made room
	// under MaxTraces or MaxBytes.
	SpansDropped, TracesEvicted int64
	Limits                      Limits
}

// Stats returns the store's figures, for its metrics.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Traces: s.order.Len(), Spans: s.spans, Bytes: s.bytes, SpansDropped: s.dropped, TracesEvicted: s.evicted, Limits: s.limits}
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
