package config

import (
	"fmt"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weft-mesh/weft/proxy/route"
)

func canonicalHeader(name string) string { return http.CanonicalHeaderKey(name) }

// compileMutation compiles one level's *_headers_to_add and
// *_headers_to_remove. Pseudo-headers are never changed, nor is host on
// requests, and values must not use Envoy's substitution formatters
// ("%VAR%"; "%%" is a literal "%").
func compileMutation(adds []*corev3.HeaderValueOption, removes []string, request bool) (route.Mutation, error) {
	kind := map[bool]string{true: "request", false: "response"}[request]
	var out route.Mutation
	for i, name := range removes {
		if err := checkMutableHeader(name, request); err != nil {
			return out, fmt.Errorf("%s_headers_to_remove[%d]: %w", kind, i, err)
		}
		out.Remove = append(out.Remove, canonicalHeader(name))
	}
	for i, o := range adds {
		hv, err := compileHeaderValueOption(o, request)
		if err != nil {
			return out, fmt.Errorf("%s_headers_to_add[%d]: %w", kind, i, err)
		}
		out.Add = append(out.Add, hv)
	}
	return out, nil
}

func compileHeaderValueOption(o *corev3.HeaderValueOption, request bool) (route.HeaderValue, error) {
	if err := onlyFields(o, "header", "append", "append_action", "keep_empty_value"); err != nil {
		return route.HeaderValue{}, err
	}
	h := o.GetHeader()
	if err := onlyFields(h, "key", "value", "raw_value"); err != nil {
		return route.HeaderValue{}, fmt.Errorf("header: %w", err)
	}
	if err := checkMutableHeader(h.GetKey(), request); err != nil {
		return route.HeaderValue{}, err
	}
	value := h.GetValue()
	if len(h.GetRawValue()) > 0 {
		value = string(h.GetRawValue())
	}
	value, err := literalHeaderValue(value)
	if err != nil {
		return route.HeaderValue{}, fmt.Errorf("header %q: %w", h.GetKey(), err)
	}
	out := route.HeaderValue{Key: canonicalHeader(h.GetKey()), Value: value, KeepEmpty: o.GetKeepEmptyValue()}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		out.Action = route.AppendIfExistsOrAdd
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		out.Action = route.AddIfAbsent
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		out.Action = route.OverwriteIfExistsOrAdd
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		out.Action = route.OverwriteIfExists
	}
	//lint:ignore SA1019 append is deprecated, and exclusive with append_action.
	if a := o.GetAppend(); a != nil {
		if o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			return route.HeaderValue{}, fmt.Errorf("header %q: append and append_action are both set", h.GetKey())
		}
		if !a.GetValue() {
			out.Action = route.OverwriteIfExistsOrAdd
		}
	}
	return out, nil
}

func checkMutableHeader(name string, request bool) error {
	switch lower := strings.ToLower(name); {
	case strings.HasPrefix(lower, ":"):
		return fmt.Errorf("pseudo-header %q cannot be changed", name)
	case request && lower == "host":
		return fmt.Errorf("header %q cannot be changed (use host_rewrite_literal)", name)
	}
	return nil
}

// literalHeaderValue unescapes "%%" and rejects substitution formatters.
func literalHeaderValue(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("substitution formatters (%q) are not supported", v)
	}
	return b.String(), nil
}
