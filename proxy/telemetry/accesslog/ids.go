package accesslog

import (
	"encoding/hex"
	"fmt"
)

// TraceID is a W3C trace ID. It is written as 32 lower-case hex digits,
// or "" when zero; it is hex-encoded by the writer goroutine, not on the
// request path.
type TraceID [16]byte

// SpanID is a span ID, written as 16 hex digits, or "" when zero.
type SpanID [8]byte

func (id TraceID) MarshalText() ([]byte, error)  { return hexText(id[:]), nil }
func (id *TraceID) UnmarshalText(b []byte) error { return unhexText(id[:], b) }
func (id SpanID) MarshalText() ([]byte, error)   { return hexText(id[:]), nil }
func (id *SpanID) UnmarshalText(b []byte) error  { return unhexText(id[:], b) }

func hexText(id []byte) []byte {
	for _, b := range id {
		if b != 0 {
			return hex.AppendEncode(nil, id)
		}
	}
	return []byte{}
}

func unhexText(dst, text []byte) error {
	if len(text) == 0 {
		clear(dst)
		return nil
	}
	if hex.DecodedLen(len(text)) != len(dst) {
		return fmt.Errorf("ID %q: want %d hex digits", text, 2*len(dst))
	}
	_, err := hex.Decode(dst, text)
	return err
}
