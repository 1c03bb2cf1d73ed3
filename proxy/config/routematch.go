//lint:file-ignore SA1019 the deprecated header matchers are still part of the API and control planes send them.

package config

import (
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/route"
)

// compileRouteHeaderMatcher compiles a route HeaderMatcher. A matcher
// without a match specifier, or with an empty exact_match, tests
// presence, as in Envoy.
func compileRouteHeaderMatcher(h *routev3.HeaderMatcher) (route.HeaderMatcher, error) {
	if err := onlyFields(h, "name", "exact_match", "safe_regex_match", "range_match", "present_match", "prefix_match",
		"suffix_match", "contains_match", "string_match", "invert_match", "treat_missing_header_as_empty"); err != nil {
		return route.HeaderMatcher{}, err
	}
	out := route.HeaderMatcher{
		Name:           strings.ToLower(h.GetName()),
		Invert:         h.GetInvertMatch(),
		MissingAsEmpty: h.GetTreatMissingHeaderAsEmpty(),
	}
	var err error
	switch spec := h.GetHeaderMatchSpecifier().(type) {
	case nil:
		out.Kind, out.Present = route.HeaderPresent, true
	case *routev3.HeaderMatcher_PresentMatch:
		out.Kind, out.Present = route.HeaderPresent, spec.PresentMatch
	case *routev3.HeaderMatcher_StringMatch:
		out.String, err = compileStringMatcher(spec.StringMatch)
	case *routev3.HeaderMatcher_ExactMatch:
		if spec.ExactMatch == "" {
			out.Kind, out.Present = route.HeaderPresent, true
			break
		}
		out.String, err = match.NewString(match.Exact, spec.ExactMatch, false)
	case *routev3.HeaderMatcher_PrefixMatch:
		out.String, err = match.NewString(match.Prefix, spec.PrefixMatch, false)
	case *routev3.HeaderMatcher_SuffixMatch:
		out.String, err = match.NewString(match.Suffix, spec.SuffixMatch, false)
	case *routev3.HeaderMatcher_ContainsMatch:
		out.String, err = match.NewString(match.Contains, spec.ContainsMatch, false)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		out.String, err = compileRegex(spec.SafeRegexMatch)
	case *routev3.HeaderMatcher_RangeMatch:
		out.Kind, out.Start, out.End = route.HeaderRange, spec.RangeMatch.GetStart(), spec.RangeMatch.GetEnd()
	default:
		return out, fmt.Errorf("%s is not supported", oneofName(h, "header_match_specifier"))
	}
	return out, err
}

// compileQueryMatcher compiles a QueryParameterMatcher; without a string
// matcher it tests presence.
func compileQueryMatcher(q *routev3.QueryParameterMatcher) (route.QueryMatcher, error) {
	out := route.QueryMatcher{Name: q.GetName()}
	switch spec := q.GetQueryParameterMatchSpecifier().(type) {
	case *routev3.QueryParameterMatcher_StringMatch:
		m, err := compileStringMatcher(spec.StringMatch)
		if err != nil {
			return out, err
		}
		out.String = m
	case *routev3.QueryParameterMatcher_PresentMatch:
		if !spec.PresentMatch {
			return out, fmt.Errorf("present_match false is not supported")
		}
		out.PresentOnly = true
	default:
		out.PresentOnly = true
	}
	return out, nil
}
