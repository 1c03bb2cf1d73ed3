// Package route holds compiled HTTP route tables and matches requests
// against them.
//
// A Table is immutable once built and safe for concurrent use; Match does
// not allocate unless the Host header has upper-case letters. Tables know nothing about xDS: proxy/config translates
// RouteConfiguration resources into the plain specs below.
package route

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// VirtualHost is a named group of routes served for a set of domains.
type VirtualHost struct {
	Name string
	// Domains are exact hosts ("api.example.com", optionally with a port),
	// suffix wildcards ("*.example.com"), prefix wildcards ("api.*") or "*".
	Domains []string
	// Routes are tried in order; the first match wins.
	Routes []Route
}

// Table routes requests to clusters by virtual host, then route.
type Table struct {
	Name   string
	vhosts []VirtualHost
	exact  map[string]*VirtualHost
	suffix []wildcard // longest first
	prefix []wildcard // longest first
	any    *VirtualHost
}

type wildcard struct {
	part  string // the domain without its '*'
	vhost *VirtualHost
}

// NewTable builds a Table, which keeps vhosts: the caller must not modify
// them afterwards. It fails when a domain is malformed or served by
// two virtual hosts, naming the virtual host.
func NewTable(name string, vhosts []VirtualHost) (*Table, error) {
	t := &Table{Name: name, vhosts: vhosts, exact: make(map[string]*VirtualHost)}
	seen := make(map[string]string)
	for i := range vhosts {
		vh := &vhosts[i]
		for _, d := range vh.Domains {
			d = strings.ToLower(d)
			if other, dup := seen[d]; dup {
				return nil, fmt.Errorf("virtual host %q: domain %q is also served by virtual host %q", vh.Name, d, other)
			}
			seen[d] = vh.Name
			if err := t.addDomain(d, vh); err != nil {
				return nil, fmt.Errorf("virtual host %q: %w", vh.Name, err)
			}
		}
	}
	byLength := func(w []wildcard) func(i, j int) bool {
		return func(i, j int) bool { return len(w[i].part) > len(w[j].part) }
	}
	sort.SliceStable(t.suffix, byLength(t.suffix))
	sort.SliceStable(t.prefix, byLength(t.prefix))
	return t, nil
}

func (t *Table) addDomain(d string, vh *VirtualHost) error {
	switch n := strings.Count(d, "*"); {
	case d == "":
		return fmt.Errorf("empty domain")
	case d == "*":
		t.any = vh
	case n == 0:
		t.exact[d] = vh
	case n == 1 && strings.HasPrefix(d, "*"):
		t.suffix = append(t.suffix, wildcard{part: d[1:], vhost: vh})
	case n == 1 && strings.HasSuffix(d, "*"):
		t.prefix = append(t.prefix, wildcard{part: d[:len(d)-1], vhost: vh})
	default:
		return fmt.Errorf("domain %q: a wildcard may only be the first or last character", d)
	}
	return nil
}

// VirtualHosts returns the table's virtual hosts. Callers must not modify them.
func (t *Table) VirtualHosts() []VirtualHost { return t.vhosts }

// Match returns the route for a request's Host header and escaped path,
// or nil when no virtual host or route matches.
func (t *Table) Match(host, path string) *Route {
	vh := t.virtualHost(strings.ToLower(host))
	if vh == nil {
		return nil
	}
	for i := range vh.Routes {
		if vh.Routes[i].Match.matches(path) {
			return &vh.Routes[i]
		}
	}
	return nil
}

// virtualHost picks the virtual host as Envoy does: exact domains, then the
// longest suffix wildcard, then the longest prefix wildcard, then "*". A
// host with a port that matches nothing is retried without its port.
func (t *Table) virtualHost(host string) *VirtualHost {
	if vh := t.lookup(host); vh != nil {
		return vh
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		if vh := t.lookup(h); vh != nil {
			return vh
		}
	}
	return t.any
}

func (t *Table) lookup(host string) *VirtualHost {
	if vh, ok := t.exact[host]; ok {
		return vh
	}
	for _, w := range t.suffix {
		if len(host) > len(w.part) && strings.HasSuffix(host, w.part) {
			return w.vhost
		}
	}
	for _, w := range t.prefix {
		if len(host) > len(w.part) && strings.HasPrefix(host, w.part) {
			return w.vhost
		}
	}
	return nil
}
