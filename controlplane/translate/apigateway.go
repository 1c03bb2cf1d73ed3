package translate

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/catalog"
)

// An API gateway (a registration of kind api-gateway, Consul 1.15 on)
// gets, for each listener of the api-gateway entry of its service name, a
// listener on its address. An HTTP listener serves the http-route entries
// bound to it: a virtual host per hostname, each rule's matches as
// routes, in the Kubernetes Gateway API's order of precedence, to the
// rule's services split by weight; each service's service-resolver
// applies (its router and splitter do not: the route is the router). A
// TCP listener proxies to the one service of the one tcp-route bound to
// it. TLS, when the listener names inline-certificate entries, is
// terminated with them: their certificates and keys reach the gateway as
// SDS secrets (APIGatewayCertSecretName), which config dumps redact. The
// gateway calls the mesh as its own identity, which intentions see.

// APIGatewayRouteName names the route configuration of an API gateway
// listener.
func APIGatewayRouteName(listener string) string { return "api-gateway:" + listener }

// APIGatewayCertSecretName names the SDS secret of an inline-certificate
// entry.
func APIGatewayCertSecretName(entry string) string { return "api-gateway-certificate/" + entry }

func (t *translator) apiGateway(p *catalog.Proxy) *Resources {
	pr := newProxyResources()
	gw := t.apiGatewayEntry(p.Name)
	if gw == nil {
		t.problem("api gateway %q: no api-gateway config entry named %q: it has no listeners", p.ID, p.Name)
		return pr.r
	}
	t.notApplied(p, fmt.Sprintf("api-gateway %q", gw.Name), gw.Unsupported)
	for _, msg := range gw.Problems {
		t.problem("api gateway %q: %s", p.ID, msg)
	}
	caller := &catalog.Proxy{ID: p.ID, Name: p.Name, DestinationName: p.Name} // calls the mesh as p.Name
	ports := map[int]string{}
	for _, l := range gw.Listeners {
		switch other, dup := ports[l.Port]; {
		case !validPort(l.Port):
			t.problem("api gateway %q: listener %q: port %d is not a TCP port; it is left out", p.ID, l.Name, l.Port)
			continue
		case dup:
			t.problem("api gateway %q: listener %q: port %d is listener %q's too; it is left out", p.ID, l.Name, l.Port, other)
			continue
		}
		ports[l.Port] = l.Name
		ts, secrets, err := gatewayTLS(l.TLS, isHTTP(cmp.Or(l.Protocol, catalog.ProtocolHTTP)))
		if err != nil {
			t.problem("api gateway %q: listener %q: %v; it is left out", p.ID, l.Name, err)
			continue
		}
		before := len(pr.r.Listeners)
		if protocol := cmp.Or(l.Protocol, catalog.ProtocolHTTP); isHTTP(protocol) {
			t.apiGatewayHTTPListener(p, caller, l, protocol, ts, pr)
		} else {
			t.apiGatewayTCPListener(p, caller, l, ts, pr)
		}
		if len(pr.r.Listeners) > before {
			for _, sec := range secrets {
				if !slices.ContainsFunc(pr.r.Secrets, func(s *tlsv3.Secret) bool { return s.Name == sec.Name }) {
					pr.r.Secrets = append(pr.r.Secrets, sec) // listeners may share a certificate
				}
			}
		}
	}
	return t.finishGateway(pr)
}

func apiGatewayListenerName(p *catalog.Proxy, port int) string {
	return "api-gateway:" + cmp.Or(p.Address, "0.0.0.0") + ":" + strconv.Itoa(port)
}

// apiGatewayTCPListener proxies a TCP listener to the one service of the
// one tcp-route bound to it.
func (t *translator) apiGatewayTCPListener(p, caller *catalog.Proxy, l catalog.APIGatewayListener, ts *corev3.TransportSocket, pr *proxyResources) {
	if len(l.TCPRoutes) != 1 || len(l.TCPRoutes[0].Services) != 1 {
		t.problem("api gateway %q: listener %q (tcp) needs exactly one tcp-route with one service, has %s; it is left out", p.ID, l.Name, describeTCPRoutes(l.TCPRoutes))
		return
	}
	svc := l.TCPRoutes[0].Services[0]
	settings, _ := t.upstreamSettingsFor(caller, catalog.Upstream{DestinationName: svc, Protocol: catalog.ProtocolTCP})
	ch := t.chainFor(svc, t.snap.Datacenter, false)
	for _, msg := range ch.problems {
		t.problem("api gateway %q: service %q: %s", p.ID, svc, msg)
	}
	name := apiGatewayListenerName(p, l.Port)
	pr.r.Listeners = append(pr.r.Listeners, listenerWith(name, socketAddress(cmp.Or(p.Address, "0.0.0.0"), l.Port), corev3.TrafficDirection_OUTBOUND, ts,
		tcpProxyFilterFor(name, ch.targets[0].target.clusterName())))
	t.addChain(p, svc, ch, settings, pr)
}

func describeTCPRoutes(routes []*catalog.TCPRoute) string {
	if len(routes) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range routes {
		parts = append(parts, fmt.Sprintf("%q with %d", r.Name, len(r.Services)))
	}
	return strings.Join(parts, ", ")
}

// apiGatewayHTTPListener serves the http-routes bound to an HTTP
// listener.
func (t *translator) apiGatewayHTTPListener(p, caller *catalog.Proxy, l catalog.APIGatewayListener, protocol string, ts *corev3.TransportSocket, pr *proxyResources) {
	hosts := map[string][]gatewayRoute{} // domain → its routes
	for _, r := range l.HTTPRoutes {
		domains := routeDomains(l, r)
		if len(domains) == 0 {
			t.problem("api gateway %q: http-route %q: none of its hostnames %q is served by listener %q (hostname %q); it is left out", p.ID, r.Name, r.Hostnames, l.Name, l.Hostname)
			continue
		}
		routes := t.httpRouteRoutes(p, caller, r, protocol, l.RequiresJWT, pr)
		for _, d := range domains {
			hosts[d] = append(hosts[d], routes...)
		}
	}
	rc := &routev3.RouteConfiguration{Name: APIGatewayRouteName(l.Name)}
	for _, d := range slices.Sorted(maps.Keys(hosts)) {
		rs := hosts[d]
		slices.SortStableFunc(rs, func(a, b gatewayRoute) int { return comparePrecedence(a.match, b.match) })
		vh := &routev3.VirtualHost{Name: d, Domains: []string{d}}
		if d != "*" {
			vh.Domains = append(vh.Domains, d+":"+strconv.Itoa(l.Port))
		}
		for _, r := range rs {
			vh.Routes = append(vh.Routes, r.route)
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	pr.addRoute(rc)
	name := apiGatewayListenerName(p, l.Port)
	f := httpFilter(hcmConfig{statPrefix: name, rdsName: rc.Name, tracing: t.tracingFor(p.Name)})
	pr.r.Listeners = append(pr.r.Listeners, listenerWith(name, socketAddress(cmp.Or(p.Address, "0.0.0.0"), l.Port), corev3.TrafficDirection_OUTBOUND, ts, f))
}

// routeDomains are the hosts an http-route serves on a listener: its
// hostnames that the listener's hostname admits, or, when it names none,
// the listener's hostname ("*" for any).
func routeDomains(l catalog.APIGatewayListener, r *catalog.HTTPRoute) []string {
	lh := l.Hostname
	if lh == "" {
		lh = "*"
	}
	if len(r.Hostnames) == 0 {
		return []string{lh}
	}
	var out []string
	for _, h := range r.Hostnames {
		if hostAdmits(lh, h) {
			out = append(out, h)
		}
	}
	return out
}

// hostAdmits reports whether a listener hostname (exact, "*.suffix" or
// "*") admits a route hostname.
func hostAdmits(listener, host string) bool {
	switch {
	case listener == "*" || strings.EqualFold(listener, host):
		return true
	case strings.HasPrefix(listener, "*."):
		suffix := listener[1:] // ".example.com"
		return len(host) > len(suffix) && strings.HasSuffix(strings.ToLower(host), strings.ToLower(suffix))
	}
	return false
}

// gatewayRoute is an Envoy route with the match it was built from, which
// orders it.
type gatewayRoute struct {
	match *catalog.RouteHTTPMatch
	route *routev3.Route
}

// httpRouteRoutes builds the routes of an http-route's rules, adding the
// clusters of their services; a rule that cannot be built is reported
// and left out.
func (t *translator) httpRouteRoutes(p, caller *catalog.Proxy, r *catalog.HTTPRoute, protocol string, listenerJWT bool, pr *proxyResources) []gatewayRoute {
	var out []gatewayRoute
	for i, rule := range r.Rules {
		field := fmt.Sprintf("http-route %q: Rules[%d]", r.Name, i)
		refuse := rule.RequiresJWT || listenerJWT
		var splits []chainSplit
		if !refuse {
			var err error
			if splits, err = t.ruleSplits(caller, rule, protocol, pr); err != nil {
				t.problem("api gateway %q: %s: %v; the rule is left out", p.ID, field, err)
				continue
			}
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []catalog.RouteHTTPMatch{{PathPrefix: "/"}}
		}
		dest := rule.Destination
		for k := range matches {
			m := &matches[k]
			if err := checkRouteMatch(m); err != nil {
				t.problem("api gateway %q: %s.Matches[%d]: %v; the match is left out", p.ID, field, k, err)
				continue
			}
			if dest.PrefixRewrite != "" && m.PathExact == "" && m.PathPrefix == "" {
				t.problem("api gateway %q: %s.Matches[%d]: URLRewrite.Path needs an exact or prefix path match; the match is left out", p.ID, field, k)
				continue
			}
			if refuse {
				out = append(out, gatewayRoute{match: m, route: jwtRefusal(m)})
				continue
			}
			cr := chainRoute{match: m, dest: &dest, splits: splits, split: len(splits) > 1}
			out = append(out, gatewayRoute{match: m, route: envoyRoute(cr)})
		}
	}
	return out
}

// jwtRefusal answers the requests of a rule that asks for a JWT with 403:
// Weft cannot verify JWTs, and a gateway must not let through what its
// configuration says needs one.
func jwtRefusal(m *catalog.RouteHTTPMatch) *routev3.Route {
	return &routev3.Route{Match: routeMatch(m), Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
		Status: 403,
		Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: jwtRefusalBody}},
	}}}
}

// jwtRefusalBody is what a request refused for want of JWT verification
// is told.
const jwtRefusalBody = "refused: this route requires a JWT, which Weft's API gateway cannot verify\n"

// ruleSplits resolves a rule's services, each through its resolver, and
// adds their clusters; weights become shares of 10,000, as a splitter's.
func (t *translator) ruleSplits(caller *catalog.Proxy, rule catalog.HTTPRouteRule, protocol string, pr *proxyResources) ([]chainSplit, error) {
	if len(rule.Services) == 0 {
		return nil, fmt.Errorf("no service")
	}
	total := 0
	for _, s := range rule.Services {
		total += max(s.Weight, 0)
	}
	var splits []chainSplit
	var given uint32
	for i, s := range rule.Services {
		if got := t.protocolOf(s.Name); !isHTTP(got) {
			return nil, fmt.Errorf("service %q has protocol %q; an HTTP route needs http, http2 or grpc", s.Name, got)
		}
		res, err := t.resolve(target{service: s.Name, dc: t.snap.Datacenter}, false)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", s.Name, err)
		}
		share := uint32(10000)
		if len(rule.Services) > 1 {
			if total == 0 {
				return nil, fmt.Errorf("the services' weights add up to 0")
			}
			share = uint32(max(s.Weight, 0) * 10000 / total)
			if i == len(rule.Services)-1 {
				share = 10000 - given
			}
		}
		given += share
		if share == 0 {
			continue // Envoy refuses a zero weight; a 0 share takes no traffic anyway
		}
		settings, _ := t.upstreamSettingsFor(caller, catalog.Upstream{DestinationName: s.Name, Protocol: protocol})
		t.addTargetCluster(caller, s.Name, res, t.loadAssignmentOf(res), settings, pr)
		splits = append(splits, chainSplit{weight: share, to: res, request: s.RequestHeaders, response: s.ResponseHeaders})
	}
	return splits, nil
}

// comparePrecedence orders matches as the Kubernetes Gateway API does,
// most specific first: an exact path, then the longest prefix, then a
// regex; then a method; then more headers; then more query parameters.
func comparePrecedence(a, b *catalog.RouteHTTPMatch) int {
	rank := func(m *catalog.RouteHTTPMatch) (int, int) {
		switch {
		case m.PathExact != "":
			return 0, -len(m.PathExact)
		case m.PathPrefix != "":
			return 1, -len(m.PathPrefix)
		case m.PathRegex != "":
			return 2, -len(m.PathRegex)
		}
		return 3, 0
	}
	ak, al := rank(a)
	bk, bl := rank(b)
	return cmp.Or(cmp.Compare(ak, bk), cmp.Compare(al, bl),
		cmp.Compare(min(len(b.Methods), 1), min(len(a.Methods), 1)),
		cmp.Compare(len(b.Headers), len(a.Headers)),
		cmp.Compare(len(b.QueryParams), len(a.QueryParams)))
}

// gatewayTLS is a gateway listener's transport socket, presenting its
// certificates (one SDS secret each, returned too); nil without TLS. A
// certificate whose chain and key do not parse, or do not match, is an
// error, so that a listener never serves with half its TLS.
func gatewayTLS(g *catalog.GatewayTLS, http bool) (*corev3.TransportSocket, []*tlsv3.Secret, error) {
	if g == nil {
		return nil, nil, nil
	}
	if len(g.Certificates) == 0 {
		return nil, nil, fmt.Errorf("TLS names no certificate")
	}
	params, err := tlsParameters(g.MinVersion, g.MaxVersion, g.CipherSuites, tlsFields{min: "TLS.MinVersion", max: "TLS.MaxVersion", suites: "TLS.CipherSuites"})
	if err != nil {
		return nil, nil, err
	}
	common := &tlsv3.CommonTlsContext{TlsParams: params, AlpnProtocols: alpnFor(http)}
	var secrets []*tlsv3.Secret
	for _, c := range g.Certificates {
		if _, err := tls.X509KeyPair([]byte(c.Certificate), []byte(c.PrivateKey)); err != nil {
			return nil, nil, fmt.Errorf("inline-certificate %q: %v", c.Name, err)
		}
		name := APIGatewayCertSecretName(c.Name)
		secrets = append(secrets, &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: c.Certificate}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: c.PrivateKey}},
		}}})
		common.TlsCertificateSdsSecretConfigs = append(common.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()})
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}, secrets, nil
}
