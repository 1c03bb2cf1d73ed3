// Package match holds compiled string matchers with Envoy's
// StringMatcher semantics, shared by the SAN checks of mTLS and by RBAC.
//
// A String is immutable once built and safe for concurrent use; Match does
// not allocate.
package match

import (
	"fmt"
	"regexp"
	"strings"
)

// Kind says how a String compares its value.
type Kind uint8

const (
	// Exact matches the whole string.
	Exact Kind = iota + 1
	// Prefix matches strings that start with the value.
	Prefix
	// Suffix matches strings that end with the value.
	Suffix
	// Contains matches strings that contain the value.
	Contains
	// Regex matches when the whole string matches the RE2 expression.
	Regex
)

func (k Kind) String() string {
	switch k {
	case Exact:
		return "exact"
	case Prefix:
		return "prefix"
	case Suffix:
		return "suffix"
	case Contains:
		return "contains"
	case Regex:
		return "safe_regex"
	}
	return "unknown"
}

// String is a compiled string matcher. Build it with NewString.
type String struct {
	kind       Kind
	value      string // lower-cased when ignoreCase
	ignoreCase bool
	re         *regexp.Regexp
}

// NewString compiles a matcher. ignoreCase (ASCII only, as Envoy's) is
// not allowed with Regex; Prefix, Suffix and Contains need a value.
func NewString(kind Kind, value string, ignoreCase bool) (String, error) {
	m := String{kind: kind, value: value, ignoreCase: ignoreCase}
	switch kind {
	case Exact:
	case Prefix, Suffix, Contains:
		if value == "" {
			return String{}, fmt.Errorf("%s matcher with an empty value", kind)
		}
	case Regex:
		if ignoreCase {
			return String{}, fmt.Errorf("ignore_case is not supported with safe_regex")
		}
		re, err := regexp.Compile(`^(?:` + value + `)$`)
		if err != nil {
			return String{}, fmt.Errorf("safe_regex %q: %w", value, err)
		}
		m.re = re
	default:
		return String{}, fmt.Errorf("unknown string matcher kind %d", kind)
	}
	if ignoreCase {
		m.value = toLowerASCII(value)
	}
	return m, nil
}

// MustString is NewString for values known to be valid; it panics on error.
func MustString(kind Kind, value string, ignoreCase bool) String {
	m, err := NewString(kind, value, ignoreCase)
	if err != nil {
		panic(err)
	}
	return m
}

// Match reports whether s matches. The zero String matches nothing.
func (m *String) Match(s string) bool {
	switch m.kind {
	case Exact:
		return m.equal(s)
	case Prefix:
		return len(s) >= len(m.value) && m.equal(s[:len(m.value)])
	case Suffix:
		return len(s) >= len(m.value) && m.equal(s[len(s)-len(m.value):])
	case Contains:
		return m.contains(s)
	case Regex:
		return m.re.MatchString(s)
	}
	return false
}

func (m *String) equal(s string) bool {
	if m.ignoreCase {
		return equalFoldASCII(s, m.value)
	}
	return s == m.value
}

// equalFoldASCII compares s with lower, which is lower case, ignoring
// ASCII case only, as Envoy does.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (m *String) contains(s string) bool {
	if !m.ignoreCase {
		return strings.Contains(s, m.value)
	}
	for i := 0; i+len(m.value) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(m.value)], m.value) {
			return true
		}
	}
	return false
}

// String describes the matcher, e.g. `prefix "spiffe://weft.local/"`.
func (m String) String() string {
	s := fmt.Sprintf("%s %q", m.kind, m.value)
	if m.ignoreCase {
		s += " (ignore case)"
	}
	return s
}

// Equal reports whether two matchers match the same strings by the same
// rule (for telling configuration changes apart).
func (m String) Equal(o String) bool {
	return m.kind == o.kind && m.value == o.value && m.ignoreCase == o.ignoreCase
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
