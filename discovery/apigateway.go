package discovery

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/backoff"
)

// API gateways (Consul 1.15 on): the api-gateway, http-route, tcp-route
// and inline-certificate entries, each kind watched on its own and joined
// per gateway when a snapshot is built (joinAPIGateways). An agent that
// does not know these kinds (Consul 1.14 answers "invalid config entry
// kind") is asked once; the watches then do not run, and the control
// plane logs why.

// apiGatewayState is what the API gateway watches found, converted.
type apiGatewayState struct {
	gateways map[string]*gatewayEntryRaw
	http     map[string]*httpRouteRaw
	tcp      map[string]*tcpRouteRaw
	certs    map[string]*catalog.InlineCertificate
}

// gatewayEntryRaw is an api-gateway entry before its routes are bound:
// each listener names its certificates.
type gatewayEntryRaw struct {
	name        string
	listeners   []listenerRaw
	unsupported []string
}

type listenerRaw struct {
	listener catalog.APIGatewayListener // without routes or certificates
	certs    []string                   // inline-certificate names, when TLS
	tls      bool
}

type httpRouteRaw struct {
	route       *catalog.HTTPRoute
	parents     []api.ResourceReference
	unsupported []string
}

type tcpRouteRaw struct {
	route       *catalog.TCPRoute
	parents     []api.ResourceReference
	unsupported []string
}

// watchAPIGatewayEntries asks once whether the agent knows the API
// gateway kinds, then watches each.
func (c *coordinator) watchAPIGatewayEntries(ctx context.Context) {
	supported, ok := c.probeAPIGatewayKinds(ctx)
	if !ok {
		return
	}
	if !supported {
		c.env.logger.Info("this Consul has no api-gateway, http-route, tcp-route or inline-certificate entries (Consul 1.15 on): API gateways get no configuration")
		return
	}
	c.spawn(ctx, func(ctx context.Context) {
		watchEntryKind(ctx, c, api.APIGateway, convertAPIGateways, func(s *apiGatewayState, v map[string]*gatewayEntryRaw) { s.gateways = v })
	})
	c.spawn(ctx, func(ctx context.Context) {
		watchEntryKind(ctx, c, api.HTTPRoute, convertHTTPRoutes, func(s *apiGatewayState, v map[string]*httpRouteRaw) { s.http = v })
	})
	c.spawn(ctx, func(ctx context.Context) {
		watchEntryKind(ctx, c, api.TCPRoute, convertTCPRoutes, func(s *apiGatewayState, v map[string]*tcpRouteRaw) { s.tcp = v })
	})
	watchEntryKind(ctx, c, api.InlineCertificate, convertInlineCertificates, func(s *apiGatewayState, v map[string]*catalog.InlineCertificate) { s.certs = v })
}

// probeAPIGatewayKinds asks for the api-gateway entries until Consul
// answers: supported is false when it does not know the kind; ok is false
// when ctx ended first.
func (c *coordinator) probeAPIGatewayKinds(ctx context.Context) (supported, ok bool) {
	retry := c.env.cfg.retryPolicy()
	for n := 0; ; n++ {
		_, _, err := c.env.client.ConfigEntries().List(api.APIGateway, (&api.QueryOptions{Datacenter: c.env.datacenter}).WithContext(ctx))
		switch {
		case err == nil:
			return true, true
		case strings.Contains(err.Error(), "invalid config entry kind"):
			return false, true
		}
		if !backoff.Sleep(ctx, retry.Delay(n)) {
			return false, false
		}
	}
}

// watchEntryKind watches the config entries of one kind, converting them
// and storing the result in the API gateway state.
func watchEntryKind[T any](ctx context.Context, c *coordinator, kind string, convert func([]api.ConfigEntry) map[string]T, store func(*apiGatewayState, map[string]T)) {
	fetch := func(q *api.QueryOptions) (map[string]T, uint64, error) {
		entries, meta, err := c.env.client.ConfigEntries().List(kind, q)
		if err != nil {
			return nil, 0, fmt.Errorf("watch %s entries: %w", kind, err)
		}
		return convert(entries), meta.LastIndex, nil
	}
	runBlocking(ctx, c.env, "config/"+kind, fetch, func(ctx context.Context, v map[string]T) bool {
		return c.send(ctx, func(context.Context) { store(&c.state.peering.api, v) })
	})
}

func convertAPIGateways(entries []api.ConfigEntry) map[string]*gatewayEntryRaw {
	out := map[string]*gatewayEntryRaw{}
	for _, e := range entries {
		g, ok := e.(*api.APIGatewayConfigEntry)
		if !ok || g == nil {
			continue
		}
		var u unsupported
		if g.Namespace != "" && g.Namespace != "default" || g.Partition != "" && g.Partition != "default" {
			u.list = append(u.list, fmt.Sprintf("Namespace %q, Partition %q (Enterprise)", g.Namespace, g.Partition))
		}
		if g.Defaults != nil {
			u.list = append(u.list, "Defaults (limits of every service)")
		}
		if g.TLS.Enabled || g.TLS.SDS != nil || len(g.TLS.CipherSuites) > 0 || g.TLS.TLSMinVersion != "" || g.TLS.TLSMaxVersion != "" {
			u.list = append(u.list, "TLS (the gateway entry's own; listeners' TLS applies)")
		}
		raw := &gatewayEntryRaw{name: g.Name}
		for i, l := range g.Listeners {
			field := fmt.Sprintf("Listeners[%d]", i)
			jwt := l.Override != nil && l.Override.JWT != nil || l.Default != nil && l.Default.JWT != nil
			if jwt {
				u.list = append(u.list, field+".Override, .Default: JWT (enforced as a refusal: Weft cannot verify JWTs)")
			}
			if l.TLS.SDS != nil {
				u.set(field+".TLS.SDS.ClusterName", l.TLS.SDS.ClusterName)
			}
			lr := listenerRaw{listener: catalog.APIGatewayListener{Name: l.Name, Hostname: l.Hostname, Port: l.Port, Protocol: l.Protocol, RequiresJWT: jwt}}
			for k, ref := range l.TLS.Certificates {
				if kind := cmp.Or(ref.Kind, api.InlineCertificate); kind != api.InlineCertificate {
					u.set(fmt.Sprintf("%s.TLS.Certificates[%d].Kind", field, k), kind)
					continue
				}
				lr.certs = append(lr.certs, ref.Name)
			}
			if len(l.TLS.Certificates) > 0 {
				lr.tls = true
				lr.listener.TLS = &catalog.GatewayTLS{MinVersion: l.TLS.MinVersion, MaxVersion: l.TLS.MaxVersion, CipherSuites: l.TLS.CipherSuites}
			}
			raw.listeners = append(raw.listeners, lr)
		}
		raw.unsupported = u.list
		out[g.Name] = raw
	}
	return out
}

func convertInlineCertificates(entries []api.ConfigEntry) map[string]*catalog.InlineCertificate {
	out := map[string]*catalog.InlineCertificate{}
	for _, e := range entries {
		if c, ok := e.(*api.InlineCertificateConfigEntry); ok && c != nil {
			out[c.Name] = &catalog.InlineCertificate{Name: c.Name, Certificate: c.Certificate, PrivateKey: c.PrivateKey}
		}
	}
	return out
}

func convertTCPRoutes(entries []api.ConfigEntry) map[string]*tcpRouteRaw {
	out := map[string]*tcpRouteRaw{}
	for _, e := range entries {
		r, ok := e.(*api.TCPRouteConfigEntry)
		if !ok || r == nil {
			continue
		}
		var u unsupported
		route := &catalog.TCPRoute{Name: r.Name}
		for i, s := range r.Services {
			field := fmt.Sprintf("tcp-route %q: Services[%d]", r.Name, i)
			u.tenancy(field, s.Namespace, s.Partition, "")
			if s.TLS != nil || s.Limits != nil {
				u.list = append(u.list, field+" (TLS or limits)")
			}
			route.Services = append(route.Services, s.Name)
		}
		out[r.Name] = &tcpRouteRaw{route: route, parents: r.Parents, unsupported: u.list}
	}
	return out
}

func convertHTTPRoutes(entries []api.ConfigEntry) map[string]*httpRouteRaw {
	out := map[string]*httpRouteRaw{}
	for _, e := range entries {
		r, ok := e.(*api.HTTPRouteConfigEntry)
		if !ok || r == nil {
			continue
		}
		var u unsupported
		route := &catalog.HTTPRoute{Name: r.Name, Hostnames: r.Hostnames}
		for i, rule := range r.Rules {
			field := fmt.Sprintf("http-route %q: Rules[%d]", r.Name, i)
			route.Rules = append(route.Rules, convertHTTPRouteRule(field, rule, &u))
		}
		out[r.Name] = &httpRouteRaw{route: route, parents: r.Parents, unsupported: u.list}
	}
	return out
}

func convertHTTPRouteRule(field string, rule api.HTTPRouteRule, u *unsupported) catalog.HTTPRouteRule {
	var out catalog.HTTPRouteRule
	for _, m := range rule.Matches {
		out.Matches = append(out.Matches, convertHTTPMatch(m))
	}
	d := &out.Destination
	d.RequestHeaders = mergeHeaderFilters(rule.Filters.Headers)
	d.ResponseHeaders = mergeHeaderFilters(rule.ResponseFilters.Headers)
	if rw := rule.Filters.URLRewrite; rw != nil {
		d.PrefixRewrite = rw.Path
	}
	if rf := rule.Filters.RetryFilter; rf != nil {
		d.NumRetries, d.RetryOn, d.RetryOnStatusCodes, d.RetryOnConnectFailure = rf.NumRetries, rf.RetryOn, rf.RetryOnStatusCodes, rf.RetryOnConnectFailure
	}
	if tf := rule.Filters.TimeoutFilter; tf != nil {
		d.RequestTimeout, d.IdleTimeout = tf.RequestTimeout, tf.IdleTimeout
	}
	out.RequiresJWT = unsupportedFilters(field+".Filters", rule.Filters, u)
	for k, s := range rule.Services {
		sf := fmt.Sprintf("%s.Services[%d]", field, k)
		u.tenancy(sf, s.Namespace, s.Partition, "")
		if s.TLS != nil || s.Limits != nil {
			u.list = append(u.list, sf+" (TLS or limits)")
		}
		if s.Filters.URLRewrite != nil || s.Filters.RetryFilter != nil || s.Filters.TimeoutFilter != nil {
			u.list = append(u.list, sf+".Filters (URL rewrite, retries or timeouts of one service; the rule's apply)")
		}
		if unsupportedFilters(sf+".Filters", s.Filters, u) {
			out.RequiresJWT = true
		}
		// Consul's default weight is 1.
		out.Services = append(out.Services, catalog.WeightedService{Name: s.Name, Weight: cmp.Or(s.Weight, 1),
			RequestHeaders: mergeHeaderFilters(s.Filters.Headers), ResponseHeaders: mergeHeaderFilters(s.ResponseFilters.Headers)})
	}
	return out
}

// unsupportedFilters notes the filters Weft does not run, and reports
// whether they ask for a JWT.
func unsupportedFilters(field string, f api.HTTPFilters, u *unsupported) (jwt bool) {
	if f.JWT != nil {
		u.list = append(u.list, field+".JWT (enforced as a refusal: Weft cannot verify JWTs)")
		jwt = true
	}
	if len(f.ExtProc) > 0 {
		u.list = append(u.list, field+".ExtProc")
	}
	if f.ExtAuthz != nil && f.ExtAuthz.Enabled {
		u.list = append(u.list, field+".ExtAuthz")
	}
	return jwt
}

func convertHTTPMatch(m api.HTTPMatch) catalog.RouteHTTPMatch {
	var out catalog.RouteHTTPMatch
	switch m.Path.Match {
	case api.HTTPPathMatchExact:
		out.PathExact = m.Path.Value
	case api.HTTPPathMatchPrefix:
		out.PathPrefix = m.Path.Value
	case api.HTTPPathMatchRegularExpression:
		out.PathRegex = m.Path.Value
	}
	if m.Method != api.HTTPMatchMethodAll {
		out.Methods = []string{string(m.Method)}
	}
	for _, h := range m.Headers {
		hm := catalog.RouteHeaderMatch{Name: h.Name, Invert: h.Invert}
		switch h.Match {
		case api.HTTPHeaderMatchExact:
			hm.Exact = h.Value
		case api.HTTPHeaderMatchPrefix:
			hm.Prefix = h.Value
		case api.HTTPHeaderMatchSuffix:
			hm.Suffix = h.Value
		case api.HTTPHeaderMatchRegularExpression:
			hm.Regex = h.Value
		case api.HTTPHeaderMatchPresent:
			hm.Present = true
		}
		out.Headers = append(out.Headers, hm)
	}
	for _, q := range m.Query {
		qm := catalog.RouteQueryParamMatch{Name: q.Name}
		switch q.Match {
		case api.HTTPQueryMatchExact:
			qm.Exact = q.Value
		case api.HTTPQueryMatchRegularExpression:
			qm.Regex = q.Value
		case api.HTTPQueryMatchPresent:
			qm.Present = true
		}
		out.QueryParams = append(out.QueryParams, qm)
	}
	return out
}

// mergeHeaderFilters merges a list of header filters into one change:
// later Add and Set values win, removals add up.
func mergeHeaderFilters(fs []api.HTTPHeaderFilter) *catalog.HeaderModifiers {
	var out *catalog.HeaderModifiers
	for _, f := range fs {
		if len(f.Add) == 0 && len(f.Set) == 0 && len(f.Remove) == 0 {
			continue
		}
		if out == nil {
			out = &catalog.HeaderModifiers{}
		}
		if len(f.Add) > 0 {
			out.Add = merged(out.Add, f.Add)
		}
		if len(f.Set) > 0 {
			out.Set = merged(out.Set, f.Set)
		}
		out.Remove = append(out.Remove, f.Remove...)
	}
	return out
}

func merged(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}

// joinAPIGateways binds each gateway's listeners to the routes whose
// parents name them and to the certificates they name.
func (s *apiGatewayState) join() map[string]*catalog.APIGateway {
	if len(s.gateways) == 0 {
		return nil
	}
	out := make(map[string]*catalog.APIGateway, len(s.gateways))
	for name, raw := range s.gateways {
		gw := &catalog.APIGateway{Name: name, Unsupported: slices.Clone(raw.unsupported)}
		listeners := map[string]bool{}
		for _, lr := range raw.listeners {
			listeners[lr.listener.Name] = true
		}
		for _, lr := range raw.listeners {
			l := lr.listener
			if lr.tls {
				t := *l.TLS
				for _, cn := range lr.certs {
					if c := s.certs[cn]; c != nil {
						t.Certificates = append(t.Certificates, c)
					} else {
						gw.Problems = append(gw.Problems, fmt.Sprintf("listener %q names inline-certificate %q, which does not exist", l.Name, cn))
					}
				}
				l.TLS = &t
			}
			tcp := cmp.Or(l.Protocol, catalog.ProtocolHTTP) == catalog.ProtocolTCP
			for _, rn := range slices.Sorted(maps.Keys(s.http)) {
				if r := s.http[rn]; bound(r.parents, name, l.Name) {
					if tcp {
						gw.Problems = append(gw.Problems, fmt.Sprintf("http-route %q is bound to listener %q, which is tcp; it is left out", rn, l.Name))
						continue
					}
					l.HTTPRoutes = append(l.HTTPRoutes, r.route)
				}
			}
			for _, rn := range slices.Sorted(maps.Keys(s.tcp)) {
				if r := s.tcp[rn]; bound(r.parents, name, l.Name) {
					if !tcp {
						gw.Problems = append(gw.Problems, fmt.Sprintf("tcp-route %q is bound to listener %q, which is not tcp; it is left out", rn, l.Name))
						continue
					}
					l.TCPRoutes = append(l.TCPRoutes, r.route)
				}
			}
			gw.Listeners = append(gw.Listeners, l)
		}
		for _, rn := range slices.Sorted(maps.Keys(s.http)) {
			gw.Unsupported = append(gw.Unsupported, routeNotes(s.http[rn].parents, name, s.http[rn].unsupported)...)
			gw.Problems = append(gw.Problems, unknownSections("http-route", rn, s.http[rn].parents, name, listeners)...)
		}
		for _, rn := range slices.Sorted(maps.Keys(s.tcp)) {
			gw.Unsupported = append(gw.Unsupported, routeNotes(s.tcp[rn].parents, name, s.tcp[rn].unsupported)...)
			gw.Problems = append(gw.Problems, unknownSections("tcp-route", rn, s.tcp[rn].parents, name, listeners)...)
		}
		out[name] = gw
	}
	return out
}

// bound reports whether a route's parents name gateway's listener: a
// parent of the gateway naming no section binds every listener.
func bound(parents []api.ResourceReference, gateway, listener string) bool {
	return slices.ContainsFunc(parents, func(p api.ResourceReference) bool {
		return cmp.Or(p.Kind, api.APIGateway) == api.APIGateway && p.Name == gateway && (p.SectionName == "" || p.SectionName == listener)
	})
}

// routeNotes are a route's unsupported settings when it is bound to the
// gateway.
func routeNotes(parents []api.ResourceReference, gateway string, notes []string) []string {
	if !slices.ContainsFunc(parents, func(p api.ResourceReference) bool { return p.Name == gateway }) {
		return nil
	}
	return notes
}

// unknownSections names the parents of a route that name a listener the
// gateway does not have.
func unknownSections(kind, route string, parents []api.ResourceReference, gateway string, listeners map[string]bool) []string {
	var out []string
	for _, p := range parents {
		if cmp.Or(p.Kind, api.APIGateway) == api.APIGateway && p.Name == gateway && p.SectionName != "" && !listeners[p.SectionName] {
			out = append(out, fmt.Sprintf("%s %q names listener %q, which api-gateway %q does not have", kind, route, p.SectionName, gateway))
		}
	}
	return out
}
