package admin

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/weft-mesh/weft/proxy/cluster"
)

// ClusterSource is implemented by a Source that reports its upstream
// clusters: /clusters serves them.
type ClusterSource interface {
	// Clusters describes every cluster with its endpoints' health,
	// weight, breaker state and ejection.
	Clusters() []cluster.Info
}

// Controls are the admin API's operations on the process. Each is
// optional; a missing one answers 501.
type Controls struct {
	// LogLevel is the level of the process's logger, which
	// POST /logging?level= changes at runtime.
	LogLevel *slog.LevelVar
	// Quit starts a graceful shutdown (POST /quitquitquit), as SIGTERM
	// does. It must not block and may be called more than once.
	Quit func()
	// Profiling serves Go's profiles under /debug/pprof/ (CPU, heap,
	// goroutines, mutex and block contention, execution traces). Off
	// unless asked for: a profile shows the process's code paths and
	// /debug/pprof/cmdline its arguments.
	Profiling bool
}

// clusters serves GET /clusters.
func (h *handler) clusters(w http.ResponseWriter, _ *http.Request) {
	cs, ok := h.src.(ClusterSource)
	if !ok {
		http.Error(w, "this proxy does not report clusters", http.StatusNotImplemented)
		return
	}
	h.writeJSON(w, cs.Clusters())
}

// logging serves GET and POST /logging: GET reports the level, POST
// with ?level=debug|info|warn|error sets it.
func (h *handler) logging(w http.ResponseWriter, r *http.Request) {
	lv := h.controls.LogLevel
	if lv == nil {
		http.Error(w, "the log level cannot be changed at runtime", http.StatusNotImplemented)
		return
	}
	if r.Method == http.MethodPost {
		v := r.URL.Query().Get("level")
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err != nil || v == "" {
			http.Error(w, fmt.Sprintf("level %q: want debug, info, warn or error", v), http.StatusBadRequest)
			return
		}
		prev := lv.Level()
		lv.Set(l)
		h.log.Info("log level changed", "from", prev.String(), "to", l.String())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "level: %s\n", lv.Level())
}

// quit serves POST /quitquitquit.
func (h *handler) quit(w http.ResponseWriter, _ *http.Request) {
	if h.controls.Quit == nil {
		http.Error(w, "this proxy cannot be stopped over the admin API", http.StatusNotImplemented)
		return
	}
	h.log.Info("shutdown requested over the admin API")
	h.controls.Quit()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("shutting down\n"))
}
