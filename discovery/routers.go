package discovery

import (
	"fmt"
	"maps"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// convertServiceSplitters converts the list of service-splitter entries.
func convertServiceSplitters(entries []api.ConfigEntry) map[string]*catalog.ServiceSplitter {
	out := make(map[string]*catalog.ServiceSplitter, len(entries))
	for _, e := range entries {
		sp, ok := e.(*api.ServiceSplitterConfigEntry)
		if !ok || sp == nil {
			continue
		}
		var u unsupported
		s := &catalog.ServiceSplitter{Name: sp.Name}
		for i, split := range sp.Splits {
			u.tenancy(fmt.Sprintf("Splits[%d]", i), split.Namespace, split.Partition, "")
			s.Splits = append(s.Splits, catalog.Split{
				Weight:          split.Weight,
				Service:         split.Service,
				ServiceSubset:   split.ServiceSubset,
				RequestHeaders:  convertHeaderModifiers(split.RequestHeaders),
				ResponseHeaders: convertHeaderModifiers(split.ResponseHeaders),
			})
		}
		s.Unsupported, s.ModifyIndex = u.versioned(sp.ModifyIndex)
		out[sp.Name] = s
	}
	return out
}

// convertServiceRouters converts the list of service-router entries.
func convertServiceRouters(entries []api.ConfigEntry) map[string]*catalog.ServiceRouter {
	out := make(map[string]*catalog.ServiceRouter, len(entries))
	for _, e := range entries {
		r, ok := e.(*api.ServiceRouterConfigEntry)
		if !ok || r == nil {
			continue
		}
		var u unsupported
		router := &catalog.ServiceRouter{Name: r.Name}
		for i, route := range r.Routes {
			router.Routes = append(router.Routes, catalog.ServiceRoute{
				Match:       convertRouteMatch(route.Match),
				Destination: convertDestination(fmt.Sprintf("Routes[%d].Destination", i), route.Destination, &u),
			})
		}
		router.Unsupported, router.ModifyIndex = u.versioned(r.ModifyIndex)
		out[r.Name] = router
	}
	return out
}

func convertRouteMatch(m *api.ServiceRouteMatch) *catalog.RouteHTTPMatch {
	if m == nil || m.HTTP == nil {
		return nil
	}
	h := m.HTTP
	out := &catalog.RouteHTTPMatch{
		PathExact: h.PathExact, PathPrefix: h.PathPrefix, PathRegex: h.PathRegex,
		CaseInsensitive: h.CaseInsensitive, Methods: h.Methods,
	}
	for _, hh := range h.Header {
		out.Headers = append(out.Headers, catalog.RouteHeaderMatch{Name: hh.Name, Present: hh.Present,
			Exact: hh.Exact, Prefix: hh.Prefix, Suffix: hh.Suffix, Regex: hh.Regex, Invert: hh.Invert})
	}
	for _, q := range h.QueryParam {
		out.QueryParams = append(out.QueryParams, catalog.RouteQueryParamMatch{Name: q.Name, Present: q.Present, Exact: q.Exact, Regex: q.Regex})
	}
	return out
}

func convertDestination(field string, d *api.ServiceRouteDestination, u *unsupported) *catalog.RouteDestination {
	if d == nil {
		return nil
	}
	u.tenancy(field, d.Namespace, d.Partition, "")
	return &catalog.RouteDestination{
		Service:               d.Service,
		ServiceSubset:         d.ServiceSubset,
		PrefixRewrite:         d.PrefixRewrite,
		RequestTimeout:        d.RequestTimeout,
		IdleTimeout:           d.IdleTimeout,
		NumRetries:            d.NumRetries,
		RetryOnConnectFailure: d.RetryOnConnectFailure,
		RetryOn:               d.RetryOn,
		RetryOnStatusCodes:    d.RetryOnStatusCodes,
		RequestHeaders:        convertHeaderModifiers(d.RequestHeaders),
		ResponseHeaders:       convertHeaderModifiers(d.ResponseHeaders),
	}
}

// convertHeaderModifiers returns nil for modifiers that change nothing.
func convertHeaderModifiers(h *api.HTTPHeaderModifiers) *catalog.HeaderModifiers {
	if h == nil || len(h.Add) == 0 && len(h.Set) == 0 && len(h.Remove) == 0 {
		return nil
	}
	return &catalog.HeaderModifiers{Add: nilIfEmpty(h.Add), Set: nilIfEmpty(h.Set), Remove: h.Remove}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
