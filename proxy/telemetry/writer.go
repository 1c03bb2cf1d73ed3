package telemetry

import (
	"bufio"
	"net"
	"net/http"
)

// recorder is the ResponseWriter the wrapped handler writes to: it notes
// the status, the x-weft-error reason, the body bytes and a hijack. It is
// used by the handler's goroutine only.
type recorder struct {
	w        http.ResponseWriter
	status   int
	wrote    bool
	hijacked bool
	bytes    int64
	reason   string
}

// errorHeader is x-weft-error in canonical form.
const errorHeader = "X-Weft-Error"

func (w *recorder) Header() http.Header { return w.w.Header() }

func (w *recorder) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wrote, w.status = true, code
		if v := w.w.Header()[errorHeader]; len(v) > 0 {
			w.reason = v[0]
		}
	}
	w.w.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.w.Write(p)
	w.bytes += int64(n)
	return n, err
}

// FlushError flushes, as http.ResponseController.Flush asks.
func (w *recorder) FlushError() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.w).Flush()
}

// Flush implements http.Flusher for handlers that assert it.
func (w *recorder) Flush() { w.FlushError() }

// Hijack lets upgrades through (the router hijacks via
// http.ResponseController) and notes them.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.w).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, brw, err
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *recorder) Unwrap() http.ResponseWriter { return w.w }

var (
	_ http.Flusher  = (*recorder)(nil)
	_ http.Hijacker = (*recorder)(nil)
)

// grpcStatus returns a gRPC response's grpc-status: in the headers of a
// trailers-only response, else in the trailers, which the handler puts in
// the header map after the body (declared, or with http.TrailerPrefix).
func grpcStatus(h http.Header) string {
	for _, k := range [...]string{"Grpc-Status", http.TrailerPrefix + "Grpc-Status"} {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
