package rbac

import "github.com/weft-mesh/weft/proxy/match"

type principalKind uint8

const (
	principalAny principalKind = iota + 1
	principalAuthenticated
	principalAnd
	principalOr
	principalNot
)

// Principal matches the downstream peer. Build it with the constructors
// below; the zero Principal matches nothing.
type Principal struct {
	kind principalKind
	ids  []Principal
	name *match.String
}

// AnyPrincipal matches every peer, authenticated or not.
func AnyPrincipal() Principal { return Principal{kind: principalAny} }

// Authenticated matches peers with a verified certificate whose SPIFFE ID
// matches name; a nil name matches every authenticated peer.
func Authenticated(name *match.String) Principal {
	return Principal{kind: principalAuthenticated, name: name}
}

// AndIDs matches when every id matches.
func AndIDs(ids ...Principal) Principal { return Principal{kind: principalAnd, ids: ids} }

// OrIDs matches when some id matches.
func OrIDs(ids ...Principal) Principal { return Principal{kind: principalOr, ids: ids} }

// NotID matches when id does not.
func NotID(id Principal) Principal { return Principal{kind: principalNot, ids: []Principal{id}} }

func (p *Principal) matches(r *Request) bool {
	switch p.kind {
	case principalAny:
		return true
	case principalAuthenticated:
		return r.Authenticated && (p.name == nil || p.name.Match(r.Peer))
	case principalAnd:
		for i := range p.ids {
			if !p.ids[i].matches(r) {
				return false
			}
		}
		return true
	case principalOr:
		return anyPrincipal(p.ids, r)
	case principalNot:
		return !p.ids[0].matches(r)
	}
	return false
}
