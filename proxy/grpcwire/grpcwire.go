// Package grpcwire holds the rules of the gRPC wire protocol that several
// parts of Weft apply: which requests are gRPC, and how a grpc-message is
// encoded. Routing (the
// grpc route match, grpc-timeout), local replies (a gRPC status rather
// than a JSON body) and telemetry (the grpc protocol label, RPC span
// attributes) all ask it, so they never disagree.
package grpcwire

import (
	"fmt"
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

// EncodeMessage encodes a grpc-message value as the gRPC over HTTP/2
// spec says: bytes outside printable ASCII, and '%', as %XX.
func EncodeMessage(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
