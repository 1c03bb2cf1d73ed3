package route

import (
	"fmt"
	"regexp"
	"strings"
)

// MatchKind says how a route matches the request path.
type MatchKind uint8

const (
	// Prefix matches paths that start with Match.Value.
	Prefix MatchKind = iota
	// Path matches the path exactly (query string excluded).
	Path
	// Regex matches when the whole path matches Match.Value (RE2 syntax).
	Regex
)

// Route sends matching requests to a cluster.
type Route struct {
	Match   Match
	Cluster string
}

// Match is a compiled path matcher. Build Regex matches with NewRegexMatch.
type Match struct {
	Kind  MatchKind
	Value string
	// CaseInsensitive makes Prefix and Path matching ignore ASCII case.
	CaseInsensitive bool
	re              *regexp.Regexp
}

// NewRegexMatch compiles a whole-path regular expression match.
func NewRegexMatch(expr string) (Match, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return Match{}, fmt.Errorf("regex %q: %w", expr, err)
	}
	return Match{Kind: Regex, Value: expr, re: re}, nil
}

func (m *Match) matches(path string) bool {
	switch m.Kind {
	case Prefix:
		if len(path) < len(m.Value) {
			return false
		}
		return m.equal(path[:len(m.Value)])
	case Path:
		return m.equal(path)
	case Regex:
		return m.re.MatchString(path)
	}
	return false
}

func (m *Match) equal(s string) bool {
	if m.CaseInsensitive {
		return strings.EqualFold(s, m.Value)
	}
	return s == m.Value
}
