package rbac

import (
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/proxy/match"
)

type permissionKind uint8

const (
	permissionAny permissionKind = iota + 1
	permissionAnd
	permissionOr
	permissionNot
	permissionHeader
	permissionURLPath
	permissionDestinationPort
)

// Permission matches the action: the connection or the HTTP request.
// Build it with the constructors below; the zero Permission matches
// nothing.
type Permission struct {
	kind   permissionKind
	rules  []Permission
	header *Header
	path   match.String
	port   uint32
}

// AnyPermission matches everything.
func AnyPermission() Permission { return Permission{kind: permissionAny} }

// AndRules matches when every rule matches.
func AndRules(rules ...Permission) Permission { return Permission{kind: permissionAnd, rules: rules} }

// OrRules matches when some rule matches.
func OrRules(rules ...Permission) Permission { return Permission{kind: permissionOr, rules: rules} }

// NotRule matches when rule does not.
func NotRule(rule Permission) Permission {
	return Permission{kind: permissionNot, rules: []Permission{rule}}
}

// HeaderPermission matches HTTP requests by a header; it never matches a
// connection (network RBAC).
func HeaderPermission(h Header) Permission {
	h.Name = strings.ToLower(h.Name)
	h.key = http.CanonicalHeaderKey(h.Name)
	return Permission{kind: permissionHeader, header: &h}
}

// URLPath matches the normalized HTTP path, query excluded; it never
// matches a connection (network RBAC).
func URLPath(path match.String) Permission { return Permission{kind: permissionURLPath, path: path} }

// DestinationPort matches the local port the connection arrived on.
func DestinationPort(port uint32) Permission {
	return Permission{kind: permissionDestinationPort, port: port}
}

func (p *Permission) matches(r *Request) bool {
	switch p.kind {
	case permissionAny:
		return true
	case permissionAnd:
		for i := range p.rules {
			if !p.rules[i].matches(r) {
				return false
			}
		}
		return true
	case permissionOr:
		return anyPermission(p.rules, r)
	case permissionNot:
		return !p.rules[0].matches(r)
	case permissionHeader:
		return r.HTTP != nil && p.header.matches(r)
	case permissionURLPath:
		return r.HTTP != nil && p.path.Match(r.Path)
	case permissionDestinationPort:
		return r.DestinationPort == p.port
	}
	return false
}

// Header is a compiled HeaderMatcher (envoy.config.route.v3), with
// Envoy's semantics: a header that appears several times is matched as its
// values joined by ","; the pseudo-headers ":method", ":path" (normalized,
// with the query), ":authority" (also "host") and ":scheme" are the
// request's.
type Header struct {
	// Name is the header name, lower case.
	Name string
	// Value matches the header's value; nil makes this a presence match.
	Value *match.String
	// Present is the presence to match when Value is nil.
	Present bool
	// Invert inverts the result, except for a missing header, which only
	// matches an inverted "present: true" or a plain "present: false" match.
	Invert bool
	// TreatMissingAsEmpty matches a missing header as the empty string.
	TreatMissingAsEmpty bool

	key string // http.CanonicalHeaderKey(Name), set by HeaderPermission
}

func (h *Header) matches(r *Request) bool {
	value, ok := h.value(r)
	if !ok && !h.TreatMissingAsEmpty {
		return h.Value == nil && h.Present == h.Invert
	}
	var m bool
	if h.Value == nil {
		m = h.Present
	} else {
		m = h.Value.Match(value)
	}
	return m != h.Invert
}

// value returns the header's value and whether the request has it.
func (h *Header) value(r *Request) (string, bool) {
	req := r.HTTP
	if strings.HasPrefix(h.Name, ":") {
		switch h.Name {
		case ":method":
			return req.Method, true
		case ":authority":
			return req.Host, true
		case ":scheme":
			if req.TLS != nil {
				return "https", true
			}
			return "http", true
		case ":path":
			if req.URL.RawQuery == "" {
				return r.Path, true
			}
			return r.Path + "?" + req.URL.RawQuery, true
		}
		return "", false
	}
	if h.Name == "host" {
		return req.Host, true
	}
	switch vals := req.Header[h.key]; len(vals) {
	case 0:
		return "", false
	case 1:
		return vals[0], true
	default:
		return strings.Join(vals, ","), true
	}
}
