package tap

import (
	"testing"
	"time"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
)

func TestMatches(t *testing.T) {
	e := &Event{Direction: "outbound", Source: "web", Destination: "api", Path: "/items/7", Status: 503, WeftError: "no_healthy_upstream"}
	tests := []struct {
		name string
		f    *tapv1.TapFilter
		want bool
	}{
		{"empty filter", &tapv1.TapFilter{}, true},
		{"nil filter", nil, true},
		{"direction", &tapv1.TapFilter{Direction: "outbound"}, true},
		{"other direction", &tapv1.TapFilter{Direction: "inbound"}, false},
		{"source and destination", &tapv1.TapFilter{Source: "web", Destination: "api"}, true},
		{"other destination", &tapv1.TapFilter{Destination: "db"}, false},
		{"other source", &tapv1.TapFilter{Source: "batch"}, false},
		{"path prefix", &tapv1.TapFilter{PathPrefix: "/items/"}, true},
		{"other path", &tapv1.TapFilter{PathPrefix: "/orders"}, false},
		{"status class", &tapv1.TapFilter{Status: "5xx"}, true},
		{"other class", &tapv1.TapFilter{Status: "2xx"}, false},
		{"exact code", &tapv1.TapFilter{Status: "503"}, true},
		{"error", &tapv1.TapFilter{Status: "error"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(tt.f, e); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
	if !StatusMatches("error", 403, "rbac_denied") || StatusMatches("error", 404, "") || !StatusMatches("error", 0, "") {
		t.Error("error: want 5xx, a Weft error, or no status at all")
	}
	for s, want := range map[string]bool{"": true, "error": true, "2xx": true, "503": true, "6xx": false, "99": false, "ok": false, "600": false} {
		if ValidStatus(s) != want {
			t.Errorf("ValidStatus(%q) = %v, want %v", s, !want, want)
		}
	}
}

// TestHubIdleUntilStarted: no tap, no work; a tap queues what matches
// within its rate and counts the rest as dropped; stopping it ends that.
func TestHubIdleUntilStarted(t *testing.T) {
	h := NewHub()
	e := &Event{Start: time.Unix(100, 0), Direction: "inbound", Destination: "api", Path: "/", Status: 200}
	if h.Active() {
		t.Fatal("a new hub is active")
	}
	h.Publish(e)
	if len(h.queue) != 0 {
		t.Fatal("an idle hub queued an event")
	}
	h.Start(&tapv1.TapCommand{TapId: "t1", Filter: &tapv1.TapFilter{Destination: "api"}, MaxPerSecond: 3})
	h.Start(&tapv1.TapCommand{TapId: "t2", Filter: &tapv1.TapFilter{Destination: "db"}})
	if !h.Active() {
		t.Fatal("a tap runs but the hub is not active")
	}
	for range 5 { // same instant: the bucket holds 3
		h.Publish(e)
	}
	if got := len(h.queue); got != 3 {
		t.Errorf("%d events queued at 3 per second, want 3", got)
	}
	if d := h.takeDropped(); d["t1"] != 2 || len(d) != 1 {
		t.Errorf("dropped %v, want t1: 2", d)
	}
	later := *e
	later.Start = e.Start.Add(time.Second)
	h.Publish(&later)
	if got := len(h.queue); got != 4 {
		t.Errorf("%d events after a second refilled the bucket, want 4", got)
	}
	h.Stop("t1")
	h.Stop("t2")
	if h.Active() {
		t.Error("the hub is active with every tap stopped")
	}
}

func TestHubQueueIsBounded(t *testing.T) {
	h := NewHub()
	h.Start(&tapv1.TapCommand{TapId: "t", MaxPerSecond: MaxPerSecond})
	start := time.Unix(0, 0)
	for i := range QueueSize + 10 {
		h.Publish(&Event{Start: start.Add(time.Duration(i) * time.Second)}) // a full bucket each time
	}
	if len(h.queue) != QueueSize {
		t.Errorf("queue %d, want its bound %d", len(h.queue), QueueSize)
	}
	if d := h.takeDropped(); d["t"] != 10 {
		t.Errorf("dropped %v, want 10", d)
	}
}

// BenchmarkPublishIdle is the request path's cost with no tap running.
func BenchmarkPublishIdle(b *testing.B) {
	h := NewHub()
	b.ReportAllocs()
	for b.Loop() {
		if h.Active() {
			b.Fatal("active")
		}
	}
}
