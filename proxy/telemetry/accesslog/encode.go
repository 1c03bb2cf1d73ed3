package accesslog

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as one JSON line (with its newline) to b and
// returns the extended buffer. The line is what encoding/json writes for
// e with HTML escaping off — the same fields, order and escaping — but
// built without reflection or allocation, by the writer goroutine into a
// buffer it reuses.
func (e *Entry) AppendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","trace_id":"`...)
	b = appendHexID(b, e.TraceID[:])
	b = append(b, `","span_id":"`...)
	b = appendHexID(b, e.SpanID[:])
	b = append(b, '"')
	b = appendField(b, "direction", e.Direction)
	b = appendField(b, "source", e.Source)
	b = appendField(b, "source_id", e.SourceID)
	b = appendField(b, "destination", e.Destination)
	b = appendField(b, "destination_id", e.DestinationID.String())
	b = appendField(b, "route", e.Route)
	b = appendField(b, "upstream_host", e.UpstreamHost)
	b = appendField(b, "method", e.Method)
	b = appendField(b, "path", e.Path)
	b = appendField(b, "protocol", e.Protocol)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = appendField(b, "grpc_status", e.GRPCStatus)
	b = append(b, `,"duration_ms":`...)
	b = appendFloat(b, e.DurationMS)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = appendField(b, "weft_error", e.WeftError)
	return append(b, "}\n"...)
}

// appendField appends ,"name":"value" with value escaped.
func appendField(b []byte, name, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return appendString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendHexID appends id in lower-case hex, nothing when it is all zero.
func appendHexID(b []byte, id []byte) []byte {
	for _, c := range id {
		if c != 0 {
			for _, c := range id {
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			return b
		}
	}
	return b
}

// appendFloat formats f as encoding/json does: shortest representation,
// exponent form only for very small or large magnitudes. JSON has no NaN
// or infinity; they are written as 0.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it without HTML escaping: quotes, backslashes and control
// characters; invalid UTF-8 becomes U+FFFD; U+2028 and U+2029 are
// escaped for JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
