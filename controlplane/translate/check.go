package translate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/catalog"
)

// The checks here catch, with a message naming the field, what would
// otherwise reach a sidecar as a resource it must reject. Each returns an
// error whose text starts with the field's path, relative to its caller's.

// retryConditions are the retry_on conditions Consul accepts in RetryOn.
var retryConditions = []string{
	"5xx", "gateway-error", "reset", "connect-failure", "envoy-ratelimited", "retriable-4xx",
	"refused-stream", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

// headerName is what Envoy accepts as an HTTP header name it may change.
var headerName = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`)

func checkRouteMatch(m *catalog.RouteHTTPMatch) error {
	if m == nil {
		return nil
	}
	paths := 0
	for _, p := range []string{m.PathExact, m.PathPrefix, m.PathRegex} {
		if p != "" {
			paths++
		}
	}
	if paths > 1 {
		return errors.New("PathExact, PathPrefix, PathRegex: at most one may be set")
	}
	if err := checkRegex(m.PathRegex); err != nil {
		return fmt.Errorf("PathRegex: %w", err)
	}
	for i, h := range m.Headers {
		if err := checkHeaderMatch(h); err != nil {
			return fmt.Errorf("Header[%d]: %w", i, err)
		}
	}
	for i, q := range m.QueryParams {
		if err := checkQueryParamMatch(q); err != nil {
			return fmt.Errorf("QueryParam[%d]: %w", i, err)
		}
	}
	for i, meth := range m.Methods {
		if !headerName.MatchString(meth) {
			return fmt.Errorf("Methods[%d]: %q is not an HTTP method", i, meth)
		}
	}
	return nil
}

func checkHeaderMatch(h catalog.RouteHeaderMatch) error {
	if !headerName.MatchString(h.Name) {
		return fmt.Errorf("Name %q is not a header name", h.Name)
	}
	if n := countSet(h.Exact, h.Prefix, h.Suffix, h.Regex); n > 1 || n == 1 && h.Present || n == 0 && !h.Present {
		return errors.New("exactly one of Present, Exact, Prefix, Suffix, Regex must be set")
	}
	return checkRegex(h.Regex)
}

func checkQueryParamMatch(q catalog.RouteQueryParamMatch) error {
	if q.Name == "" {
		return errors.New("Name is empty")
	}
	if n := countSet(q.Exact, q.Regex); n > 1 || n == 1 && q.Present || n == 0 && !q.Present {
		return errors.New("exactly one of Present, Exact, Regex must be set")
	}
	return checkRegex(q.Regex)
}

func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// checkRegex compiles re with Go's RE2 syntax, which Envoy's RE2 shares.
func checkRegex(re string) error {
	if re == "" {
		return nil
	}
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("invalid regular expression: %w", err)
	}
	return nil
}

func checkDestination(d *catalog.RouteDestination) error {
	if d == nil {
		return nil
	}
	for i, c := range d.RetryOn {
		if !slices.Contains(retryConditions, c) {
			return fmt.Errorf("RetryOn[%d]: %q is not one of %s", i, c, strings.Join(retryConditions, ", "))
		}
	}
	for i, code := range d.RetryOnStatusCodes {
		if code < 100 || code > 599 {
			return fmt.Errorf("RetryOnStatusCodes[%d]: %d is not an HTTP status", i, code)
		}
	}
	if d.PrefixRewrite != "" && !strings.HasPrefix(d.PrefixRewrite, "/") {
		return fmt.Errorf("PrefixRewrite: %q does not start with /", d.PrefixRewrite)
	}
	return checkHeaderModifiers(d.RequestHeaders, d.ResponseHeaders)
}

func checkHeaderModifiers(request, response *catalog.HeaderModifiers) error {
	if err := checkModifiers(request); err != nil {
		return fmt.Errorf("RequestHeaders.%w", err)
	}
	if err := checkModifiers(response); err != nil {
		return fmt.Errorf("ResponseHeaders.%w", err)
	}
	return nil
}

// checkModifiers rejects names that are not header names, pseudo-headers
// and Host, which Envoy does not let routes change, and values with
// control characters.
func checkModifiers(m *catalog.HeaderModifiers) error {
	if m == nil {
		return nil
	}
	check := func(field, name string) error {
		if !headerName.MatchString(name) || strings.EqualFold(name, "host") {
			return fmt.Errorf("%s: %q cannot be changed", field, name)
		}
		return nil
	}
	for _, kv := range []struct {
		field  string
		values map[string]string
	}{{"Add", m.Add}, {"Set", m.Set}} {
		for _, name := range slices.Sorted(maps.Keys(kv.values)) {
			if err := check(kv.field, name); err != nil {
				return err
			}
			if strings.ContainsAny(kv.values[name], "\x00\r\n") {
				return fmt.Errorf("%s[%q]: value has a control character", kv.field, name)
			}
		}
	}
	for i, name := range m.Remove {
		if err := check(fmt.Sprintf("Remove[%d]", i), name); err != nil {
			return err
		}
	}
	return nil
}
