// Package rbac evaluates compiled role-based access control policies with
// the semantics of Envoy's RBAC filters (envoy.config.rbac.v3): a policy
// matches when one of its permissions and one of its principals match; an
// ALLOW engine allows exactly what some policy matches, a DENY engine
// denies exactly that.
//
// Engines know nothing of xDS: proxy/config compiles RBAC filter configs
// into them, rejecting every field it cannot express here, so that an
// engine never fails open. Engines are immutable and safe for concurrent
// use; evaluating one does not allocate (except to join a header that
// appears several times).
package rbac

import "net/http"

// Action is what an engine does with requests that a policy matches.
type Action uint8

const (
	// Allow allows requests some policy matches and denies the rest.
	Allow Action = iota
	// Deny denies requests some policy matches and allows the rest.
	Deny
)

func (a Action) String() string {
	if a == Deny {
		return "DENY"
	}
	return "ALLOW"
}

// Engine is one compiled RBAC filter.
type Engine struct {
	Action Action
	// Policies are tried in order (sorted by name by the compiler).
	Policies []Policy
}

// Policy is one named policy: it matches a request when at least one of
// its permissions and at least one of its principals match.
type Policy struct {
	Name        string
	Permissions []Permission
	Principals  []Principal
}

// Request is what a decision looks at. Build it on the stack; engines do
// not keep it.
type Request struct {
	// Authenticated reports whether the peer presented a verified
	// certificate; Peer is then its SPIFFE ID URI.
	Authenticated bool
	Peer          string
	// DestinationPort is the local port the connection arrived on.
	DestinationPort uint32
	// HTTP is the request for HTTP RBAC, nil for network RBAC.
	HTTP *http.Request
	// Path is the normalized request path without the query (HTTP only).
	Path string
}

// Decide reports whether the request is allowed and the name of the
// policy that decided it ("" when none matched). A nil engine allows
// everything.
func (e *Engine) Decide(r *Request) (allowed bool, policy string) {
	if e == nil {
		return true, ""
	}
	for i := range e.Policies {
		if e.Policies[i].matches(r) {
			return e.Action == Allow, e.Policies[i].Name
		}
	}
	return e.Action == Deny, ""
}

// Allowed is Decide without the policy name.
func (e *Engine) Allowed(r *Request) bool {
	ok, _ := e.Decide(r)
	return ok
}

// AllowedByAll reports whether every engine allows r (Envoy runs chained
// RBAC filters one after the other; any of them may deny).
func AllowedByAll(engines []*Engine, r *Request) bool {
	for _, e := range engines {
		if !e.Allowed(r) {
			return false
		}
	}
	return true
}

func (p *Policy) matches(r *Request) bool {
	return anyPermission(p.Permissions, r) && anyPrincipal(p.Principals, r)
}

func anyPermission(ps []Permission, r *Request) bool {
	for i := range ps {
		if ps[i].matches(r) {
			return true
		}
	}
	return false
}

func anyPrincipal(ps []Principal, r *Request) bool {
	for i := range ps {
		if ps[i].matches(r) {
			return true
		}
	}
	return false
}
