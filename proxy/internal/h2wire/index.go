package h2wire

import "golang.org/x/net/http2/hpack"

// Field is the HPACK field of a lower-case name and its value, marked
// never to be indexed (RFC 7541 §6.2.3) when the value is unique to one
// message or a secret:
//
//   - trace and request identifiers (traceparent, tracestate, the B3
//     headers, x-request-id) and grpc-timeout, whose value changes with
//     every request. x/net's encoder indexes every field that fits the
//     table: each request then inserted its trace context into the 4 KiB
//     dynamic table and evicted the oldest entries, so the fields every
//     request repeats (:authority, user-agent, content-type) kept falling
//     out of it and going out as literals again, and the encoder's and
//     the peer decoder's tables churned on every message.
//     BenchmarkEncodeRequestHeaders: 850-890 -> 620-640 ns per gRPC
//     request block; the block is about 7 bytes longer on average, as
//     the name "traceparent" now goes out as a literal too;
//   - credentials (authorization, proxy-authorization, and cookies
//     shorter than 20 bytes, whose values are guessable), which must not
//     share a compression context with what an attacker can make a
//     client send (RFC 7541 §7.1.3; nghttp2 and Envoy do the same).
func Field(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value, Sensitive: neverIndex(name, value)}
}

func neverIndex(name, value string) bool {
	switch name {
	case "traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
		"x-request-id", "grpc-timeout", "authorization", "proxy-authorization":
		return true
	case "cookie", "set-cookie":
		return len(value) < 20
	}
	return false
}
