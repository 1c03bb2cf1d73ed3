// Package admin serves weft-proxy's admin API:
//
//	GET /ready        200 "ready" once the first listeners and clusters are
//	                  applied and bound; 503 with the reason otherwise
//	GET /healthz      200 "ok" while the process runs (liveness)
//	GET /config_dump  accepted xDS resources by type with versions, xDS
//	                  connection status with the last ACK/NACK per type,
//	                  and the running listeners (JSON)
//	GET /listeners    running listeners with their bound addresses (JSON)
//	GET /certs        the leaf certificate (SPIFFE ID, serial, validity,
//	                  seconds to expiry, renewal) and the trust bundles'
//	                  roots (subject, SHA-256 fingerprint, validity) (JSON);
//	                  also part of /config_dump
//	GET /clusters     upstream clusters: every endpoint with its health,
//	                  weight, priority, breaker state and ejection; for an
//	                  aggregate cluster, its children in order with the
//	                  share of new requests each takes, and the child
//	                  that takes them (JSON; see ClusterSource)
//	GET /metrics      Prometheus metrics (see MetricsSource)
//	GET /logging      the log level; POST /logging?level=debug|info|warn|error
//	                  changes it at runtime
//	POST /quitquitquit  graceful shutdown, as SIGTERM (so that a Job can end
//	                  its sidecar)
//	GET /debug/pprof/ Go's profiles, only with Controls.Profiling
//	                  (weft-proxy --admin-profiling)
package admin

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

// Source is what the admin API reports on. Its methods are called from
// HTTP handler goroutines and must be safe for concurrent use.
type Source interface {
	// Ready returns nil when the proxy serves its configuration, else why not.
	Ready() error
	// XDS returns the accepted xDS state and the connection status.
	XDS() (xds.State, xds.Status)
	// Listeners describes the running listeners.
	Listeners() []listener.Info
	// Certs describes the leaf certificate and the trust bundles.
	Certs() Certs
}

// MetricsSource is implemented by a Source that has its own Prometheus
// registry: /metrics serves its Gatherer. For a Source that does not
// implement it, /metrics serves the process's default registry
// (prometheus.DefaultGatherer: the Go and process collectors, and what
// weft-proxy's main registers there, the sidecar's weft_proxy_* metrics).
type MetricsSource interface {
	Metrics() prometheus.Gatherer
}

// Certs is the document served at /certs. It holds no private key.
type Certs struct {
	// Identity is the leaf certificate and its renewal state.
	Identity identity.Status `json:"identity"`
	// TrustBundles are the roots of each SDS trust bundle, by secret
	// name, the root signing leaves first.
	TrustBundles map[string][]mtls.RootInfo `json:"trust_bundles"`
	// Linked are the leaf certificates of the linked services the proxy
	// presents too (weft-leaf/<service>: a terminating gateway's), and
	// their renewal state, by service.
	Linked map[string]identity.Status `json:"linked,omitempty"`
	// Ingress is the renewal state of an ingress gateway's leaf for
	// outside clients (weft-ingress-leaf), whose certificate is listed
	// in Certificates; nil when no listener presents one.
	Ingress *identity.Status `json:"ingress,omitempty"`
	// Certificates are those listeners present to clients outside the
	// mesh, by secret name: received over SDS (an API gateway's), or an
	// ingress gateway's own leaf (weft-ingress-leaf); subject, names,
	// validity and fingerprint, never the key.
	Certificates map[string]mtls.CertificateInfo `json:"certificates,omitempty"`
}

// Handler returns the admin API handler.
func Handler(src Source, log *slog.Logger, controls Controls) http.Handler {
	h := &handler{src: src, log: log, controls: controls}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", h.ready)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /config_dump", h.configDump)
	mux.HandleFunc("GET /listeners", h.listeners)
	mux.HandleFunc("GET /certs", h.certs)
	mux.HandleFunc("GET /clusters", h.clusters)
	mux.Handle("GET /metrics", metricsHandler(src, log))
	mux.HandleFunc("GET /logging", h.logging)
	mux.HandleFunc("POST /logging", h.logging)
	mux.HandleFunc("POST /quitquitquit", h.quit)
	if controls.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

type handler struct {
	src      Source
	log      *slog.Logger
	controls Controls
}

func metricsHandler(src Source, log *slog.Logger) http.Handler {
	g := prometheus.DefaultGatherer
	if ms, ok := src.(MetricsSource); ok {
		g = ms.Metrics()
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // a failing collector must not hide the others
	})
}

func (h *handler) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := h.src.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(err.Error() + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (h *handler) configDump(w http.ResponseWriter, _ *http.Request) {
	state, status := h.src.XDS()
	h.writeJSON(w, ConfigDump{XDS: status, Resources: dumpResources(state), Listeners: h.src.Listeners(), Certs: h.src.Certs()})
}

func (h *handler) certs(w http.ResponseWriter, _ *http.Request) {
	h.writeJSON(w, h.src.Certs())
}

func (h *handler) listeners(w http.ResponseWriter, _ *http.Request) {
	h.writeJSON(w, h.src.Listeners())
}

func (h *handler) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		h.log.Debug("admin: write response", "error", err)
	}
}
