package config

import (
	"fmt"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/weft-mesh/weft/proxy/match"
)

// compileStringMatcher compiles an Envoy StringMatcher.
func compileStringMatcher(m *matcherv3.StringMatcher) (match.String, error) {
	if m == nil {
		return match.String{}, fmt.Errorf("missing string matcher")
	}
	if err := onlyFields(m, "exact", "prefix", "suffix", "safe_regex", "contains", "ignore_case"); err != nil {
		return match.String{}, fmt.Errorf("string matcher: %w", err)
	}
	ic := m.GetIgnoreCase()
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return match.NewString(match.Exact, p.Exact, ic)
	case *matcherv3.StringMatcher_Prefix:
		return match.NewString(match.Prefix, p.Prefix, ic)
	case *matcherv3.StringMatcher_Suffix:
		return match.NewString(match.Suffix, p.Suffix, ic)
	case *matcherv3.StringMatcher_Contains:
		return match.NewString(match.Contains, p.Contains, ic)
	case *matcherv3.StringMatcher_SafeRegex:
		return compileRegex(p.SafeRegex)
	}
	return match.String{}, fmt.Errorf("string matcher without a pattern")
}

func compileRegex(re *matcherv3.RegexMatcher) (match.String, error) {
	//lint:ignore SA1019 google_re2 is deprecated but still valid: RE2 is what Go's regexp implements.
	if err := onlyFields(re, "regex", "google_re2"); err != nil {
		return match.String{}, fmt.Errorf("safe_regex: %w", err)
	}
	return match.NewString(match.Regex, re.GetRegex(), false)
}
