package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/traces"
)

// adminHandler serves the control plane's operator endpoints:
//
//	GET /metrics  Prometheus metrics
//	GET /ready    200 once a catalog snapshot has been published, else 503
//	GET /proxies  connected proxies with their ACKed versions, NACKs and translation problems
//	GET /catalog  the last published catalog snapshot, translation problems and config-entry fields not applied
//	GET /config_dump/{proxy}  the xDS resources served to one proxy, by type, with versions
//	GET /ca       trust domain, rotation phase and the roots of the bundle
//	POST /ca/rotate  rotates the root CA, streaming progress as text
//	GET /traces   the trace viewer (and /api/traces for JSON); POST /v1/traces takes OTLP/HTTP
//	GET /tap      live tap (and /api/tap: the tapped requests as they happen)
//	GET /debug/pprof/  Go runtime profiles (heap, CPU, goroutines)
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	if s.cfg.Authority != nil {
		mux.HandleFunc("GET /ca", s.handleCA)
		mux.HandleFunc("POST /ca/rotate", s.handleRotate)
	}
	if s.cfg.Traces != nil {
		viewer := traces.Viewer(s.cfg.Traces)
		for _, p := range []string{"/traces", "/traces/", "/api/traces", "/api/traces/", "/api/overview"} {
			mux.Handle(p, viewer)
		}
		mux.Handle("POST /v1/traces", &traces.Receiver{Store: s.cfg.Traces})
	}
	mux.HandleFunc("GET /api/tap", s.handleTap)
	mux.HandleFunc("GET /tap", s.handleTapPage)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if s.state.catalog.Load() == nil {
			http.Error(w, "waiting for the first catalog snapshot from Consul", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /proxies", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.proxyStatuses())
	})
	mux.HandleFunc("GET /config_dump/{proxy}", s.handleConfigDump)
	mux.HandleFunc("GET /catalog", func(w http.ResponseWriter, _ *http.Request) {
		var problems map[string][]string
		if p := s.state.problems.Load(); p != nil {
			problems = *p
		}
		var notApplied []catalog.EntryNote
		snap := s.state.catalog.Load()
		if snap != nil {
			notApplied = snap.NotApplied()
		}
		writeJSON(w, map[string]any{"catalog": snap, "problems": problems, "not_applied": notApplied, "published_at": s.state.at.Load()})
	})
	return mux
}

// proxyStatuses are the connected proxies' statuses, each with the
// problems of its last translation.
func (s *Server) proxyStatuses() []ProxyStatus {
	statuses := s.status.snapshot()
	if p := s.state.problems.Load(); p != nil {
		for i := range statuses {
			statuses[i].Problems = (*p)[statuses[i].ID]
		}
	}
	if snap := s.state.catalog.Load(); snap != nil {
		td := s.mesh().TrustDomain
		for i := range statuses {
			if p := snap.Proxies[statuses[i].ID]; p != nil && p.IsGateway() {
				statuses[i].Kind, statuses[i].Routes = p.Kind, gatewayRoutes(snap, p, td)
			}
		}
	}
	return statuses
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// RootInfo describes one root of the trust bundle.
type RootInfo struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"sha256_fingerprint"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Signing     bool      `json:"signing"`
}

// CAInfo is the answer of GET /ca.
type CAInfo struct {
	TrustDomain string     `json:"trust_domain"`
	Phase       string     `json:"rotation_phase,omitempty"`
	Roots       []RootInfo `json:"roots"`
}

func (s *Server) handleCA(w http.ResponseWriter, _ *http.Request) {
	info := CAInfo{TrustDomain: s.cfg.Authority.TrustDomain().Name()}
	if rot, ok := s.cfg.Authority.(RootRotator); ok {
		info.Phase = rot.Phase()
	}
	for i, c := range s.cfg.Authority.Bundle() {
		info.Roots = append(info.Roots, RootInfo{Subject: c.Subject.String(), Fingerprint: certs.Fingerprint(c),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, Signing: i == 0})
	}
	writeJSON(w, info)
}

// handleRotate runs a root rotation, streaming one line per step; the last
// line starts with "error:" when it did not finish.
func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	timeout := 5 * time.Minute
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			http.Error(w, fmt.Sprintf("timeout %q: want a positive duration like 2m", v), http.StatusBadRequest)
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	flusher, _ := w.(http.Flusher)
	progress := func(line string) {
		fmt.Fprintln(w, line)
		if flusher != nil {
			flusher.Flush()
		}
		s.logger.Info("root rotation", "step", line)
	}
	if err := s.rotateRoot(ctx, progress); err != nil {
		progress("error: " + err.Error())
	}
}
