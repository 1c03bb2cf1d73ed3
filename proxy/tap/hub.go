// Package tap is weft-proxy's side of live tap (api/tap/v1): while an
// operator taps, the requests this sidecar serves that match a tap's
// filter are queued, within the tap's rate and a bounded queue, and sent
// to the control plane on the sidecar's tap stream (client.go).
//
// With no tap running, the request path pays one atomic load (Hub.Active):
// events are built only while some tap runs.
package tap

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
)

// Event is one request as tap reports it. Publish copies it.
type Event struct {
	Start       time.Time
	Direction   string // "inbound" or "outbound"
	Source      string
	SourceID    string
	Destination string
	Method      string
	Path        string
	Status      int
	GRPCStatus  string
	Duration    time.Duration
	WeftError   string
	Upstream    string
	TraceID     string
}

// Limits of one tap on one sidecar.
const (
	// DefaultPerSecond and MaxPerSecond bound the events a tap sends per
	// second: a busy service tapped is sampled, not copied.
	DefaultPerSecond = 100
	MaxPerSecond     = 1000
	// QueueSize bounds the events waiting to be sent, across taps.
	QueueSize = 1024
)

// Hub holds the taps running on this sidecar. Publish may be called from
// any goroutine; Start and Stop from the tap stream's.
type Hub struct {
	taps atomic.Pointer[[]*running] // nil or empty: no tap

	mu      sync.Mutex // serializes Start and Stop
	queue   chan *tapv1.TapEvent
	dropped sync.Map // tap ID → *atomic.Uint64
}

type running struct {
	id     string
	filter *tapv1.TapFilter
	rate   limiter
}

// NewHub returns a Hub with no tap running.
func NewHub() *Hub { return &Hub{queue: make(chan *tapv1.TapEvent, QueueSize)} }

// Active reports whether a tap runs: the one check on the request path.
func (h *Hub) Active() bool {
	if h == nil {
		return false
	}
	t := h.taps.Load()
	return t != nil && len(*t) > 0
}

// Start runs the tap a command describes, replacing one of the same ID.
func (h *Hub) Start(c *tapv1.TapCommand) {
	per := int(c.GetMaxPerSecond())
	if per <= 0 {
		per = DefaultPerSecond
	}
	per = min(per, MaxPerSecond)
	r := &running{id: c.GetTapId(), filter: c.GetFilter(), rate: limiter{perSecond: float64(per)}}
	if r.filter == nil {
		r.filter = &tapv1.TapFilter{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropped.LoadOrStore(r.id, new(atomic.Uint64))
	h.swap(func(old []*running) []*running {
		out := []*running{r}
		for _, t := range old {
			if t.id != r.id {
				out = append(out, t)
			}
		}
		return out
	})
}

// Stop ends a tap; StopAll ends every one (the stream ended).
func (h *Hub) Stop(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.swap(func(old []*running) []*running {
		var out []*running
		for _, t := range old {
			if t.id != id {
				out = append(out, t)
			}
		}
		return out
	})
	h.dropped.Delete(id)
}

// StopAll ends every tap.
func (h *Hub) StopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.taps.Store(nil)
	h.dropped.Clear()
}

func (h *Hub) swap(f func([]*running) []*running) {
	var old []*running
	if t := h.taps.Load(); t != nil {
		old = *t
	}
	next := f(old)
	h.taps.Store(&next)
}

// Publish queues e for every running tap it matches, within each tap's
// rate; what does not fit is counted as dropped. It never blocks.
func (h *Hub) Publish(e *Event) {
	t := h.taps.Load()
	if t == nil {
		return
	}
	for _, r := range *t {
		if !Matches(r.filter, e) {
			continue
		}
		if !r.rate.allow(e.Start) {
			h.drop(r.id)
			continue
		}
		select {
		case h.queue <- toProto(r.id, e):
		default:
			h.drop(r.id)
		}
	}
}

func (h *Hub) drop(id string) {
	if d, ok := h.dropped.Load(id); ok {
		d.(*atomic.Uint64).Add(1)
	}
}

// takeDropped returns and resets the drop counts of the running taps.
func (h *Hub) takeDropped() map[string]uint64 {
	var out map[string]uint64
	h.dropped.Range(func(k, v any) bool {
		if n := v.(*atomic.Uint64).Swap(0); n > 0 {
			if out == nil {
				out = map[string]uint64{}
			}
			out[k.(string)] = n
		}
		return true
	})
	return out
}

// Matches reports whether a request passes a tap's filter.
func Matches(f *tapv1.TapFilter, e *Event) bool {
	switch {
	case f.GetDirection() != "" && f.GetDirection() != e.Direction,
		f.GetSource() != "" && f.GetSource() != e.Source,
		f.GetDestination() != "" && f.GetDestination() != e.Destination,
		!strings.HasPrefix(e.Path, f.GetPathPrefix()):
		return false
	}
	return StatusMatches(f.GetStatus(), e.Status, e.WeftError)
}

// StatusMatches reports whether a status passes a status filter: "",
// "2xx".."5xx", "error" (5xx or a Weft error) or an exact code.
func StatusMatches(filter string, status int, weftError string) bool {
	switch {
	case filter == "":
		return true
	case filter == "error":
		return status >= 500 || status == 0 || weftError != ""
	case len(filter) == 3 && strings.HasSuffix(filter, "xx"):
		return strconv.Itoa(status/100) == filter[:1]
	}
	return strconv.Itoa(status) == filter
}

// ValidStatus reports whether s is a status filter StatusMatches knows.
func ValidStatus(s string) bool {
	switch s {
	case "", "error", "1xx", "2xx", "3xx", "4xx", "5xx":
		return true
	}
	code, err := strconv.Atoi(s)
	return err == nil && code >= 100 && code <= 599
}

func toProto(id string, e *Event) *tapv1.TapEvent {
	return &tapv1.TapEvent{
		TapId: id, UnixNano: e.Start.UnixNano(), Direction: e.Direction, Source: e.Source, SourceId: e.SourceID,
		Destination: e.Destination, Method: e.Method, Path: e.Path, Status: uint32(max(e.Status, 0)), GrpcStatus: e.GRPCStatus,
		DurationNs: int64(e.Duration), WeftError: e.WeftError, Upstream: e.Upstream, TraceId: e.TraceID,
	}
}

// limiter is a token bucket of one second's worth of events. Taps are
// rare and short; the mutex is taken only while one runs.
type limiter struct {
	perSecond float64
	mu        sync.Mutex
	tokens    float64
	last      time.Time
}

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens, l.last = l.perSecond, now
	}
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(l.perSecond, l.tokens+d.Seconds()*l.perSecond)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
