package membership

import (
	"fmt"
	"strconv"
	"strings"
)

// Upstream is a service the app calls, through its sidecar, on
// 127.0.0.1:Port.
type Upstream struct {
	Service string
	Port    int
}

// ParseUpstreams parses "api:9191,db:5432". Empty input is no upstreams.
func ParseUpstreams(s string) ([]Upstream, error) {
	var ups []Upstream
	seen := map[int]string{}
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		name, portStr, ok := strings.Cut(f, ":")
		port, err := strconv.Atoi(portStr)
		if !ok || name == "" || err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("upstream %q: want SERVICE:PORT with PORT 1-65535", f)
		}
		if other, dup := seen[port]; dup {
			return nil, fmt.Errorf("upstreams %s and %s both bind port %d", other, name, port)
		}
		seen[port] = name
		ups = append(ups, Upstream{Service: name, Port: port})
	}
	return ups, nil
}

// FormatUpstreams is the inverse of ParseUpstreams.
func FormatUpstreams(ups []Upstream) string {
	parts := make([]string, len(ups))
	for i, u := range ups {
		parts[i] = u.Service + ":" + strconv.Itoa(u.Port)
	}
	return strings.Join(parts, ",")
}
