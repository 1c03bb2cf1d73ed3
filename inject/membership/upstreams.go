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
	// Peer is the peering the service is imported from; empty for a
	// local service.
	Peer string
	Port int
}

// ParseUpstreams parses "api:9191,db:5432". A service a peer exports is
// named as in Consul's labeled annotations, SERVICE.svc.PEER.peer (the
// namespace, SERVICE.svc.default.ns.PEER.peer, may be given when it is
// default). Empty input is no upstreams.
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
		svc, peer, err := parseUpstreamName(name)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", f, err)
		}
		seen[port] = name
		ups = append(ups, Upstream{Service: svc, Peer: peer, Port: port})
	}
	return ups, nil
}

// parseUpstreamName splits SERVICE, or SERVICE.svc[.default.ns].PEER.peer.
func parseUpstreamName(name string) (service, peer string, err error) {
	rest, ok := strings.CutSuffix(name, ".peer")
	if !ok {
		return name, "", nil
	}
	service, rest, ok = strings.Cut(rest, ".svc.")
	rest = strings.TrimPrefix(rest, "default.ns.")
	if !ok || service == "" || rest == "" || strings.Contains(rest, ".") {
		return "", "", fmt.Errorf("a peered service is SERVICE.svc.PEER.peer")
	}
	return service, rest, nil
}

// FormatUpstreams is the inverse of ParseUpstreams.
func FormatUpstreams(ups []Upstream) string {
	parts := make([]string, len(ups))
	for i, u := range ups {
		name := u.Service
		if u.Peer != "" {
			name += ".svc." + u.Peer + ".peer"
		}
		parts[i] = name + ":" + strconv.Itoa(u.Port)
	}
	return strings.Join(parts, ",")
}
