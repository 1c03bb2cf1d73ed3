// Package grpcwire holds the rules of the gRPC wire protocol that several
// parts of weft-proxy apply: which requests are gRPC. Routing (the
// grpc route match, grpc-timeout), local replies (a gRPC status rather
// than a JSON body) and telemetry (the grpc protocol label, RPC span
// attributes) all ask it, so they never disagree.
package grpcwire

import (
	"net/http"
	"strings"
)

// ContentType is the content type of gRPC messages.
const ContentType = "application/grpc"

// IsRequest reports whether r is a gRPC request: its content type is
// gRPC's (see IsContentType), over any HTTP version, as Envoy's
// Grpc::Common::isGrpcRequestHeaders decides. It does not allocate.
func IsRequest(r *http.Request) bool {
	return IsContentType(r.Header.Get("Content-Type"))
}

// IsContentType reports whether ct is gRPC's content type:
// "application/grpc", alone or followed by a "+suffix" naming the message
// encoding ("application/grpc+proto") or by ";parameters".
// "application/grpc-web" is not gRPC.
func IsContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, ContentType)
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}
