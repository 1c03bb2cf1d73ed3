package listener

import (
	"encoding/json"
	"net/http"
)

// Proxy-generated error kinds, sent in the x-weft-error header.
const (
	errNoRoute           = "no_route"
	errNoHealthyUpstream = "no_healthy_upstream"
	errConnectFailure    = "connect_failure"
	errUpstreamReset     = "upstream_reset"
	errTooManyHeaders    = "too_many_headers"
	errRBACDenied        = "rbac_denied"
	errInvalidPath       = "invalid_path"
)

// errorStatus is the status of each kind; the default is 503.
var errorStatus = map[string]int{
	errTooManyHeaders: http.StatusRequestHeaderFieldsTooLarge,
	errRBACDenied:     http.StatusForbidden,
	errInvalidPath:    http.StatusBadRequest,
}

// ErrorHeader names the response header that marks proxy-generated errors.
const ErrorHeader = "x-weft-error"

type errorBody struct {
	Error    string `json:"error"`
	Upstream string `json:"upstream"`
}

// writeProxyError answers a request the proxy could not forward: 503 (431
// for too many headers, 403 when RBAC denies it, 400 for a malformed
// path), the x-weft-error header and a small JSON body naming the upstream
// cluster.
func writeProxyError(w http.ResponseWriter, kind, upstream string) {
	status, ok := errorStatus[kind]
	if !ok {
		status = http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set(ErrorHeader, kind)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: kind, Upstream: upstream})
}
