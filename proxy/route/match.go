package route

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/proxy/grpcwire"
	"github.com/weft-mesh/weft/proxy/match"
)

// PathKind says how a route matches the request path.
type PathKind uint8

const (
	// Prefix matches paths that start with PathMatch.Value.
	Prefix PathKind = iota
	// Path matches the path exactly (query string excluded).
	Path
	// Regex matches when the whole path matches PathMatch.Value (RE2 syntax).
	Regex
	// SeparatedPrefix matches the value itself or the value followed by
	// "/" and more (Envoy's path_separated_prefix).
	SeparatedPrefix
)

// PathMatch is a compiled path matcher. Build Regex matches with
// NewRegexMatch.
type PathMatch struct {
	Kind  PathKind
	Value string
	// CaseInsensitive makes Prefix, Path and SeparatedPrefix matching
	// ignore ASCII case.
	CaseInsensitive bool
	re              *regexp.Regexp
}

// NewRegexMatch compiles a whole-path regular expression match.
func NewRegexMatch(expr string) (PathMatch, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return PathMatch{}, fmt.Errorf("regex %q: %w", expr, err)
	}
	return PathMatch{Kind: Regex, Value: expr, re: re}, nil
}

// Template renders the match as a low-cardinality path template, the
// http.route of OpenTelemetry's conventions: a path as it is, a prefix
// followed by "*" ("/api/" → "/api/*", "/" → "/*"), a separated prefix
// followed by "/*" (it also matches the prefix itself), a regex as its
// expression. Case-insensitivity is not shown.
func (m *PathMatch) Template() string {
	switch m.Kind {
	case Prefix:
		return m.Value + "*"
	case SeparatedPrefix:
		return m.Value + "/*"
	}
	return m.Value
}

func (m *PathMatch) matches(path string) bool {
	switch m.Kind {
	case Prefix:
		return len(path) >= len(m.Value) && m.equal(path[:len(m.Value)])
	case Path:
		return m.equal(path)
	case Regex:
		return m.re.MatchString(path)
	case SeparatedPrefix:
		n := len(m.Value)
		return len(path) >= n && m.equal(path[:n]) && (len(path) == n || path[n] == '/')
	}
	return false
}

func (m *PathMatch) equal(s string) bool {
	if m.CaseInsensitive {
		return strings.EqualFold(s, m.Value)
	}
	return s == m.Value
}

// Match is a route's compiled match: it holds when every part holds.
type Match struct {
	Path    PathMatch
	Headers []HeaderMatcher
	Query   []QueryMatcher
	// GRPC requires a gRPC request (content-type application/grpc…).
	GRPC bool
}

func (m *Match) matches(r *http.Request, path string) bool {
	if !m.Path.matches(path) {
		return false
	}
	if m.GRPC && !grpcwire.IsRequest(r) {
		return false
	}
	for i := range m.Headers {
		if !m.Headers[i].matches(r) {
			return false
		}
	}
	for i := range m.Query {
		if !m.Query[i].matches(r.URL.RawQuery) {
			return false
		}
	}
	return true
}

// HeaderKind says how a HeaderMatcher tests a header.
type HeaderKind uint8

const (
	// HeaderString matches the value with String.
	HeaderString HeaderKind = iota
	// HeaderPresent matches presence (Present true) or absence (false).
	HeaderPresent
	// HeaderRange matches an integer value in [Start, End).
	HeaderRange
)

// HeaderMatcher is a compiled Envoy HeaderMatcher. Names are lower case;
// the pseudo-headers :method, :authority, :path and :scheme read the
// request line. A header with several values is matched on its values
// joined with ",", as Envoy does.
type HeaderMatcher struct {
	Name   string
	Kind   HeaderKind
	String match.String
	// Present is the wanted presence for HeaderPresent.
	Present bool
	// Start and End bound HeaderRange.
	Start, End int64
	// Invert negates the result; a missing header still fails a string or
	// range match (Envoy ≥ 1.26 semantics).
	Invert bool
	// MissingAsEmpty matches a missing header as the empty string.
	MissingAsEmpty bool
}

func (m *HeaderMatcher) matches(r *http.Request) bool {
	value, ok := headerValue(r, m.Name)
	if m.Kind == HeaderPresent {
		return (ok == m.Present) != m.Invert
	}
	if !ok {
		if !m.MissingAsEmpty {
			return false
		}
		value = ""
	}
	var hit bool
	switch m.Kind {
	case HeaderString:
		hit = m.String.Match(value)
	case HeaderRange:
		n, err := strconv.ParseInt(value, 10, 64)
		hit = err == nil && n >= m.Start && n < m.End
	}
	return hit != m.Invert
}

// headerValue returns a header's values joined with ",", reading the
// request line for pseudo-headers.
func headerValue(r *http.Request, name string) (string, bool) {
	switch name {
	case ":method":
		return r.Method, true
	case ":authority", "host":
		return r.Host, r.Host != ""
	case ":path":
		return r.URL.RequestURI(), true
	case ":scheme":
		if r.TLS != nil {
			return "https", true
		}
		return "http", true
	}
	values := r.Header.Values(name)
	switch len(values) {
	case 0:
		return "", false
	case 1:
		return values[0], true
	}
	return strings.Join(values, ","), true
}

// QueryMatcher is a compiled Envoy QueryParameterMatcher: the parameter
// must be present and, unless PresentOnly, its first value (not
// percent-decoded, as Envoy) must match String.
type QueryMatcher struct {
	Name        string
	String      match.String
	PresentOnly bool
}

func (m *QueryMatcher) matches(rawQuery string) bool {
	value, ok := queryValue(rawQuery, m.Name)
	if !ok {
		return false
	}
	return m.PresentOnly || m.String.Match(value)
}

// queryValue returns the first value of a query parameter without
// allocating.
func queryValue(rawQuery, name string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}
