package controlplane

import (
	"encoding/json"
	"net/http"
)

// adminHandler serves the control plane's operator endpoints:
//
//	GET /ready    200 once a catalog snapshot has been published, else 503
//	GET /proxies  connected proxies with their ACKed versions and NACKs
//	GET /catalog  the last published catalog snapshot and translation problems
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if s.state.catalog.Load() == nil {
			http.Error(w, "waiting for the first catalog snapshot from Consul", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /proxies", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.status.snapshot())
	})
	mux.HandleFunc("GET /catalog", func(w http.ResponseWriter, _ *http.Request) {
		var problems map[string][]string
		if p := s.state.problems.Load(); p != nil {
			problems = *p
		}
		writeJSON(w, map[string]any{"catalog": s.state.catalog.Load(), "problems": problems, "published_at": s.state.at.Load()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
