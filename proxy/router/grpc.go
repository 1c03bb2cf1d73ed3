package router

import (
	"net/http"
	"strconv"
	"time"

	"github.com/weft-mesh/weft/proxy/grpcwire"
)

// grpcTimeout returns a gRPC request's grpc-timeout (gRPC over HTTP/2:
// up to 8 digits and a unit of H, M, S, m, u or n). ok is false for
// other requests and for malformed values.
func grpcTimeout(r *http.Request) (time.Duration, bool) {
	v := r.Header.Get("Grpc-Timeout")
	if v == "" || len(v) < 2 || len(v) > 9 || !grpcwire.IsRequest(r) {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	const maxUnits = 1<<63 - 1
	if n > int64(maxUnits/unit) {
		return time.Duration(maxUnits), true
	}
	return time.Duration(n) * unit, true
}

// encodeGRPCTimeout encodes d in the finest unit that fits in 8 digits,
// rounding up so that the upstream never gets a longer deadline... nor
// a zero one.
func encodeGRPCTimeout(d time.Duration) string {
	if d <= 0 {
		return "1n"
	}
	const maxValue = 99999999
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}} {
		if v := (d + u.unit - 1) / u.unit; v <= maxValue {
			return strconv.FormatInt(int64(v), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(min((d+time.Hour-1)/time.Hour, maxValue)), 10) + "H"
}
