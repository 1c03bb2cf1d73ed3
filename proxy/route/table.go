// Package route holds compiled HTTP route tables and matches requests
// against them: virtual hosts by domain, then routes by path, headers and
// query parameters, each with the action that says where and how a
// matching request is forwarded (weighted clusters, rewrites, timeouts,
// retry and hash policies, header changes).
//
// A Table is immutable once built and safe for concurrent use; Match does
// not allocate unless the Host header has upper-case letters or a header
// matcher reads a header with several values. Tables know nothing about
// xDS: proxy/config translates RouteConfiguration resources into the
// plain specs below.
package route

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
)

// Route sends matching requests as its action says.
type Route struct {
	Name  string
	Match Match
	// Template is the route's path template (PathMatch.Template), the
	// http.route of its requests' spans. New fills it in when empty.
	Template string
	Action   Action
	// RequestHeaders and ResponseHeaders are the route's header changes.
	RequestHeaders, ResponseHeaders Mutation

	vhost *VirtualHost
	table *Table
}

// VirtualHost is a named group of routes served for a set of domains.
type VirtualHost struct {
	Name string
	// Domains are exact hosts ("api.example.com", optionally with a port),
	// suffix wildcards ("*.example.com"), prefix wildcards ("api.*") or "*".
	Domains []string
	// Routes are tried in order; the first match wins.
	Routes []Route
	// RequestHeaders and ResponseHeaders apply to every route.
	RequestHeaders, ResponseHeaders Mutation
}

// Config is what a Table is built from.
type Config struct {
	Name         string
	VirtualHosts []VirtualHost
	// RequestHeaders and ResponseHeaders apply to every virtual host.
	RequestHeaders, ResponseHeaders Mutation
	// MostSpecificWins runs header changes from the table down to the
	// weighted cluster instead of the other way round, so that the most
	// specific level has the last word (most_specific_header_mutations_wins).
	MostSpecificWins bool
}

// Table routes requests to clusters by virtual host, then route.
type Table struct {
	Name             string
	vhosts           []VirtualHost
	exact            map[string]*VirtualHost
	suffix           []wildcard // longest first
	prefix           []wildcard // longest first
	any              *VirtualHost
	reqHeaders       Mutation
	respHeaders      Mutation
	mostSpecificWins bool
}

type wildcard struct {
	part  string // the domain without its '*'
	vhost *VirtualHost
}

// NewTable builds a Table of vhosts without table-level header changes.
func NewTable(name string, vhosts []VirtualHost) (*Table, error) {
	return New(Config{Name: name, VirtualHosts: vhosts})
}

// New builds a Table, which keeps cfg's virtual hosts: the caller must
// not modify them afterwards. It fails when a domain is malformed or
// served by two virtual hosts, naming the virtual host.
func New(cfg Config) (*Table, error) {
	vhosts := cfg.VirtualHosts
	t := &Table{Name: cfg.Name, vhosts: vhosts, exact: make(map[string]*VirtualHost),
		reqHeaders: cfg.RequestHeaders, respHeaders: cfg.ResponseHeaders, mostSpecificWins: cfg.MostSpecificWins}
	seen := make(map[string]string)
	for i := range vhosts {
		vh := &vhosts[i]
		for j := range vh.Routes {
			rt := &vh.Routes[j]
			rt.vhost, rt.table = vh, t
			rt.Action.Finish()
			if rt.Template == "" {
				rt.Template = rt.Match.Path.Template()
			}
		}
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

// Match returns the route for a request, given its normalized escaped
// path, or nil when no virtual host or route matches.
func (t *Table) Match(r *http.Request, path string) *Route {
	vh := t.virtualHost(strings.ToLower(r.Host))
	if vh == nil {
		return nil
	}
	for i := range vh.Routes {
		if vh.Routes[i].Match.matches(r, path) {
			return &vh.Routes[i]
		}
	}
	return nil
}

// RequestMutations returns the request header changes for a request
// routed by r to wc, in the order they run: by default the weighted
// cluster's, the route's, the virtual host's, then the table's, so that
// on a conflict the least specific level wins, as in Envoy.
func (r *Route) RequestMutations(wc *WeightedCluster) Mutations {
	return r.levels(&wc.RequestHeaders, &r.RequestHeaders, &r.vhost.RequestHeaders, &r.table.reqHeaders)
}

// ResponseMutations is RequestMutations for response headers; wc is nil
// for a direct response, which has no weighted cluster.
func (r *Route) ResponseMutations(wc *WeightedCluster) Mutations {
	var cluster *Mutation
	if wc != nil {
		cluster = &wc.ResponseHeaders
	}
	return r.levels(cluster, &r.ResponseHeaders, &r.vhost.ResponseHeaders, &r.table.respHeaders)
}

func (r *Route) levels(cluster, route, vhost, table *Mutation) Mutations {
	if r.table.mostSpecificWins {
		return Mutations{table, vhost, route, cluster}
	}
	return Mutations{cluster, route, vhost, table}
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
