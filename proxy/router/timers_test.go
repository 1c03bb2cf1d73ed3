package router

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/proxy/route"
)

// TestOneTimerForRouteAndIdleTimeouts checks the exchange's single timer:
// a stream that keeps sending outlives several idle timeouts (the timer
// re-arms), one that goes quiet is cut at its idle timeout, and the route
// timeout still ends an active stream.
func TestOneTimerForRouteAndIdleTimeouts(t *testing.T) {
	const idle = 150 * time.Millisecond
	tests := []struct {
		name     string
		timeout  time.Duration
		gap      time.Duration // between the upstream's writes
		writes   int
		complete bool
	}{
		{"active stream outlives the idle timeout", 0, idle / 5, 20, true},
		{"quiet stream is cut", 0, 4 * idle, 2, false},
		{"route timeout ends an active stream", 2 * idle, idle / 5, 30, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
				for i := range tt.writes {
					if i > 0 {
						select {
						case <-time.After(tt.gap):
						case <-r.Context().Done():
							return
						}
					}
					io.WriteString(w, "x")
					w.(http.Flusher).Flush()
				}
			})))
			e.routes(to("c", withTimeout(tt.timeout), func(r *route.Route) { r.Action.IdleTimeout, r.Action.HasIdleTimeout = idle, true }))
			start := time.Now()
			resp, err := (&http.Client{Timeout: wait}).Get("http://" + e.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			full := strings.Repeat("x", tt.writes)
			if got := string(b) == full; got != tt.complete {
				t.Errorf("after %v got %d of %d bytes; want complete=%v", time.Since(start).Round(time.Millisecond), len(b), tt.writes, tt.complete)
			}
		})
	}
}
