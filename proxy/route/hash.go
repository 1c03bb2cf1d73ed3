package route

import (
	"math/bits"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
)

// HashKind says what a HashPolicy hashes.
type HashKind uint8

const (
	// HashHeader hashes a request header.
	HashHeader HashKind = iota
	// HashCookie hashes a cookie, generating it when absent and a TTL is set.
	HashCookie
	// HashQuery hashes a query parameter's first value.
	HashQuery
	// HashSourceIP hashes the downstream IP address.
	HashSourceIP
)

// HashPolicy is one compiled RouteAction.hash_policy entry.
type HashPolicy struct {
	Kind HashKind
	// Name is the header (canonical form), cookie or parameter name.
	Name string
	// Terminal stops at this policy when it yields a hash.
	Terminal bool
	// CookieTTL, when HasCookieTTL, makes a missing cookie be generated
	// and set on the response; 0 is a session cookie.
	CookieTTL    time.Duration
	HasCookieTTL bool
	CookiePath   string
}

// RequestHash is the outcome of a route's hash policies.
type RequestHash struct {
	Hash uint64
	OK   bool
	// SetCookie, when not nil, must be added to the upstream response.
	SetCookie *http.Cookie
}

// ComputeHash evaluates policies on r as Envoy's HashPolicyImpl: each
// yielding policy folds in as h = rotl64(h, 1) ^ xxHash64(value), and a
// terminal policy that yielded a hash ends the evaluation. sourceIP is
// the downstream address's IP.
func ComputeHash(policies []HashPolicy, r *http.Request, sourceIP string) RequestHash {
	var out RequestHash
	for i := range policies {
		p := &policies[i]
		h, ok := p.evaluate(r, sourceIP, &out)
		if ok {
			if out.OK {
				h ^= bits.RotateLeft64(out.Hash, 1)
			}
			out.Hash, out.OK = h, true
		}
		if p.Terminal && out.OK {
			break
		}
	}
	return out
}

func (p *HashPolicy) evaluate(r *http.Request, sourceIP string, out *RequestHash) (uint64, bool) {
	switch p.Kind {
	case HashHeader:
		return hashHeader(r.Header.Values(p.Name))
	case HashCookie:
		if c, err := r.Cookie(p.Name); err == nil {
			return xxhash.Sum64String(c.Value), true
		}
		if !p.HasCookieTTL {
			return 0, false
		}
		value := strconv.FormatUint(rand.Uint64(), 16)
		out.SetCookie = &http.Cookie{Name: p.Name, Value: value, Path: p.CookiePath, HttpOnly: true}
		if p.CookieTTL > 0 {
			out.SetCookie.MaxAge = int(p.CookieTTL / time.Second)
		}
		return xxhash.Sum64String(value), true
	case HashQuery:
		if v, ok := queryValue(r.URL.RawQuery, p.Name); ok {
			return xxhash.Sum64String(v), true
		}
	case HashSourceIP:
		if sourceIP != "" {
			return xxhash.Sum64String(sourceIP), true
		}
	}
	return 0, false
}

// hashHeader hashes a header's values, sorted so that their order does
// not matter, as Envoy does.
func hashHeader(values []string) (uint64, bool) {
	switch len(values) {
	case 0:
		return 0, false
	case 1:
		return xxhash.Sum64String(values[0]), true
	}
	sorted := slices.Sorted(slices.Values(values))
	d := xxhash.New()
	for _, v := range sorted {
		d.WriteString(v)
	}
	return d.Sum64(), true
}
