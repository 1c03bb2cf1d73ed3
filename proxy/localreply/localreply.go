// Package localreply writes the responses weft-proxy generates itself
// (Envoy's "local replies"): a status, the x-weft-error header naming the
// reason, and a small JSON body {"error": reason, "upstream": cluster}.
// gRPC requests get a trailers-only gRPC response instead (HTTP 200,
// grpc-status and grpc-message, the same x-weft-error), as Envoy sends,
// so that gRPC clients see a status rather than a protocol error. A
// route's direct response (WriteDirect) is a local reply too, with the
// status and body its configuration gives.
package localreply

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/weft-mesh/weft/proxy/grpcwire"
)

// Reason names why the proxy answered a request itself.
type Reason string

// The reasons, sent in x-weft-error.
const (
	NoRoute           Reason = "no_route"
	NoHealthyUpstream Reason = "no_healthy_upstream"
	CircuitOpen       Reason = "circuit_open"
	Overflow          Reason = "overflow"
	UpstreamTimeout   Reason = "upstream_timeout"
	UpstreamReset     Reason = "upstream_reset"
	ConnectFailure    Reason = "connect_failure"
	// PeerUnreachable is a connect failure to a cluster peer's service:
	// the mesh gateway its cluster's hosts are (the peer's, or this
	// cluster's in MeshGateway mode local) refused, timed out or failed
	// the handshake.
	PeerUnreachable Reason = "peer_unreachable"
	// NoExportedService is a peer's mesh gateway refusing the handshake
	// with a TLS unrecognized_name alert: no route for the server name
	// sent, as Weft's mesh gateway answers when the service is not
	// exported, or not to this peer.
	NoExportedService Reason = "no_exported_service"
	RBACDenied        Reason = "rbac_denied"
	InvalidPath       Reason = "invalid_path"
	TooManyHeaders    Reason = "too_many_headers"
	HeadersTooLarge   Reason = "headers_too_large"
	// DirectResponse is the answer of a route's direct_response action
	// (WriteDirect): what the configuration says, not a failure.
	DirectResponse Reason = "direct_response"
)

// reasons are all of the above. Add a reason to both.
var reasons = [...]Reason{
	NoRoute, NoHealthyUpstream, CircuitOpen, Overflow, UpstreamTimeout, UpstreamReset,
	ConnectFailure, PeerUnreachable, NoExportedService, RBACDenied, InvalidPath, TooManyHeaders, HeadersTooLarge, DirectResponse,
}

// Known returns the Reason that s names, and false when s names none (an
// x-weft-error value an upstream made up). It does not allocate.
func Known(s string) (Reason, bool) {
	for _, r := range reasons {
		if string(r) == s {
			return r, true
		}
	}
	return "", false
}

// Failure reports whether a reply for r is a failure of the request: every
// reason but DirectResponse, whose status says (a 5xx is a failure).
func (r Reason) Failure(status int) bool { return r != DirectResponse || status >= 500 }

// Status is the HTTP status of a reason: 503 unless listed. A direct
// response's is its route's.
func (r Reason) Status() int {
	switch r {
	case NoRoute:
		return http.StatusNotFound // as Envoy's NR
	case UpstreamTimeout:
		return http.StatusGatewayTimeout
	case RBACDenied:
		return http.StatusForbidden
	case InvalidPath:
		return http.StatusBadRequest
	case TooManyHeaders, HeadersTooLarge:
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return http.StatusServiceUnavailable
}

// grpcStatus maps a reason to a gRPC status code, as Envoy maps local
// reply statuses (gRPC's HTTP-to-status mapping, with timeouts as
// DEADLINE_EXCEEDED).
func (r Reason) grpcStatus() int {
	switch r {
	case NoRoute:
		return 12 // UNIMPLEMENTED, gRPC's mapping of 404
	case UpstreamTimeout:
		return 4 // DEADLINE_EXCEEDED
	case RBACDenied:
		return 7 // PERMISSION_DENIED
	case InvalidPath, TooManyHeaders, HeadersTooLarge:
		return 13 // INTERNAL
	}
	return 14 // UNAVAILABLE
}

// Header names the response header that marks proxy-generated responses.
const Header = "x-weft-error"

type body struct {
	Error    Reason `json:"error"`
	Upstream string `json:"upstream"`
}

// Write answers r with reason; upstream names the cluster, if any.
// Headers already set on w (response header changes of the route) are
// kept.
func Write(w http.ResponseWriter, r *http.Request, reason Reason, upstream string) {
	h := w.Header()
	h.Set(Header, string(reason))
	if r != nil && grpcwire.IsRequest(r) {
		h.Set("Content-Type", grpcwire.ContentType)
		h.Set("Grpc-Status", strconv.Itoa(reason.grpcStatus()))
		h.Set("Grpc-Message", grpcMessage(reason, upstream))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(reason.Status())
	json.NewEncoder(w).Encode(body{Error: reason, Upstream: upstream})
}

// WriteDirect answers r with a route's direct response, as Envoy's
// direct_response does: status and body, sent as text/plain when there
// is one, with x-weft-error: direct_response. A gRPC request gets a
// trailers-only response instead, as Envoy converts local replies:
// grpc-status is gRPC's mapping of status, grpc-message the body.
// Headers already set on w (response header changes of the route) are
// kept.
func WriteDirect(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set(Header, string(DirectResponse))
	if r != nil && grpcwire.IsRequest(r) {
		h.Set("Content-Type", grpcwire.ContentType)
		h.Set("Grpc-Status", strconv.Itoa(grpcStatusOf(status)))
		if len(body) > 0 {
			h.Set("Grpc-Message", grpcwire.EncodeMessage(string(body)))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if len(body) > 0 {
		h.Set("Content-Type", "text/plain")
	}
	w.WriteHeader(status)
	w.Write(body)
}

// grpcStatusOf is gRPC's mapping of an HTTP status to a status code, as
// Envoy applies it to local replies.
func grpcStatusOf(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 13 // INTERNAL
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return 12 // UNIMPLEMENTED
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

func grpcMessage(reason Reason, upstream string) string {
	msg := "weft-proxy: " + string(reason)
	if upstream != "" {
		msg += " (upstream " + upstream + ")"
	}
	return grpcwire.EncodeMessage(msg)
}
