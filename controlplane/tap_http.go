package controlplane

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
	"github.com/weft-mesh/weft/proxy/tap"
)

// TapEvent is one tapped request as /api/tap streams it.
type TapEvent struct {
	Time        time.Time `json:"time"`
	Proxy       string    `json:"proxy"`
	Direction   string    `json:"direction"`
	Source      string    `json:"source"`
	SourceID    string    `json:"source_id,omitempty"`
	Destination string    `json:"destination"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Status      uint32    `json:"status"`
	GRPCStatus  string    `json:"grpc_status,omitempty"`
	DurationMS  float64   `json:"duration_ms"`
	WeftError   string    `json:"weft_error,omitempty"`
	Upstream    string    `json:"upstream,omitempty"`
	TraceID     string    `json:"trace_id,omitempty"`
}

func tapEventOf(e *tapv1.TapEvent) TapEvent {
	return TapEvent{Time: time.Unix(0, e.GetUnixNano()).UTC(), Proxy: e.GetProxyId(), Direction: e.GetDirection(), Source: e.GetSource(),
		SourceID: e.GetSourceId(), Destination: e.GetDestination(), Method: e.GetMethod(), Path: e.GetPath(), Status: e.GetStatus(),
		GRPCStatus: e.GetGrpcStatus(), DurationMS: float64(e.GetDurationNs()) / 1e6, WeftError: e.GetWeftError(),
		Upstream: e.GetUpstream(), TraceID: e.GetTraceId()}
}

// parseTapRequest reads a tap's filters, naming a bad one.
func parseTapRequest(r *http.Request) (TapRequest, error) {
	q := r.URL.Query()
	req := TapRequest{To: q.Get("to"), From: q.Get("from"), PathPrefix: q.Get("path"), Status: q.Get("status"), MaxPerSecond: tap.DefaultPerSecond}
	if !tap.ValidStatus(req.Status) {
		return req, fmt.Errorf("status %q: want 2xx, 3xx, 4xx, 5xx, error or an HTTP status code", req.Status)
	}
	if req.PathPrefix != "" && !strings.HasPrefix(req.PathPrefix, "/") {
		return req, fmt.Errorf("path %q: want a path prefix starting with /", req.PathPrefix)
	}
	if v := q.Get("max_rps"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > tap.MaxPerSecond {
			return req, fmt.Errorf("max_rps %q: want 1 to %d events per second per sidecar", v, tap.MaxPerSecond)
		}
		req.MaxPerSecond = uint32(n)
	}
	return req, nil
}

// tapReportEvery paces the stream's reports of dropped events; every
// tapHeartbeatTicks of them the stream writes a heartbeat.
const (
	tapReportEvery    = time.Second
	tapHeartbeatTicks = 5
)

// handleTap streams a tap: newline-delimited JSON (one event per line; a
// first line {"tap": …} once it runs; {"dropped": n} when events were
// lost), or server-sent events when the client accepts text/event-stream
// (the /tap page). The ACL token is x-consul-token or ?token=.
func (s *Server) handleTap(w http.ResponseWriter, r *http.Request) {
	req, err := parseTapRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token := r.Header.Get("X-Consul-Token")
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	t, stop, err := s.taps.Start(r.Context(), token, req)
	if errors.Is(err, ErrTapForbidden) {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer stop()
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	write := func(v any) bool {
		b, _ := json.Marshal(v)
		if sse {
			_, err = fmt.Fprintf(w, "data: %s\n\n", b)
		} else {
			_, err = fmt.Fprintf(w, "%s\n", b)
		}
		return err == nil && rc.Flush() == nil
	}
	connected, tapped := s.taps.sidecarCount(t)
	if !write(map[string]any{"tap": map[string]any{"id": t.id, "sidecars_connected": connected, "sidecars_tapped": tapped}}) {
		return
	}
	// A heartbeat now and then finds clients that went away without the
	// server seeing their connection close: an empty line, or an SSE
	// comment, which readers skip.
	idle := 0
	heartbeat := func() bool {
		if sse {
			_, err = io.WriteString(w, ": heartbeat\n\n")
		} else {
			_, err = io.WriteString(w, "\n")
		}
		return err == nil && rc.Flush() == nil
	}
	tick := time.NewTicker(tapReportEvery)
	defer tick.Stop()
	for {
		select {
		case e := <-t.events:
			if !write(tapEventOf(e)) {
				return
			}
		case <-tick.C:
			if n := t.dropped.Swap(0); n > 0 && !write(map[string]uint64{"dropped": n}) {
				return
			}
			if idle++; idle%tapHeartbeatTicks == 0 && !heartbeat() {
				return // a client gone without closing: writes fail
			}
		case <-r.Context().Done():
			return
		}
	}
}

//go:embed tap.html
var tapPage []byte

func (s *Server) handleTapPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(tapPage)
}
