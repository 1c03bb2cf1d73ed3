package controlplane

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// gatewayRoutes describes what a gateway routes, one line per route, for
// /proxies and weft proxy-status: a mesh gateway's SNI names and the
// services they reach, an ingress gateway's ports, hosts and services, an
// API gateway's listeners and routes, a terminating gateway's linked
// services.
func gatewayRoutes(snap *catalog.Snapshot, p *catalog.Proxy, trustDomain string) []string {
	var out []string
	switch p.Kind {
	case catalog.KindMeshGateway:
		for _, svc := range slices.Sorted(maps.Keys(snap.Exports)) {
			for _, peer := range snap.Exports[svc] {
				out = append(out, fmt.Sprintf("SNI %s → %s (exported to peer %s), TLS passed through", translate.ExportedSNI(svc, peer, trustDomain), svc, peer))
			}
		}
	case catalog.KindIngressGateway:
		entry := snap.IngressGateways[p.Name]
		if entry == nil {
			return nil
		}
		for _, l := range entry.Listeners {
			port := strconv.Itoa(l.Port)
			protocol := cmp.Or(l.Protocol, "tcp")
			if _, tls := entry.ListenerTLS(l); tls {
				protocol += " TLS (" + translate.IngressLeafSecret + ")"
			}
			for _, s := range l.Services {
				hosts := "any connection"
				if catalog.IsL7(l.Protocol) {
					hs := s.Hosts
					if len(hs) == 0 {
						hs = []string{s.Name + ".ingress.*"}
					}
					hosts = "Host " + strings.Join(hs, ", ")
				}
				out = append(out, fmt.Sprintf(":%s %s %s → %s", port, protocol, hosts, s.Name))
			}
		}
	case catalog.KindAPIGateway:
		if entry := snap.APIGateways[p.Name]; entry != nil {
			for _, l := range entry.Listeners {
				out = append(out, apiGatewayRoutes(l)...)
			}
		}
	case catalog.KindTerminatingGateway:
		if entry := snap.TerminatingGateways[p.Name]; entry != nil {
			for _, s := range entry.Services {
				out = append(out, terminatingRoute(snap, s))
			}
		}
	}
	return out
}

// terminatingRoute describes one service a terminating gateway answers
// for: the identity it presents, where it forwards and how.
func terminatingRoute(snap *catalog.Snapshot, s catalog.LinkedService) string {
	passing := 0
	for _, e := range snap.LinkedInstances[s.Name] {
		if e.Health != catalog.HealthCritical {
			passing++
		}
	}
	to := "plaintext"
	if s.CAFile != "" {
		to = fmt.Sprintf("TLS (CA %s, SNI %s)", s.CAFile, cmp.Or(s.SNI, s.Name))
	}
	return fmt.Sprintf("SNI %s → %s, mTLS as %s, %d of %d instances healthy, %s", translate.ClusterName(s.Name, snap.Datacenter), s.Name, s.Name,
		passing, len(snap.LinkedInstances[s.Name]), to)
}

// apiGatewayRoutes describes an API gateway listener's routes: its port,
// protocol and TLS, then each route and the services of its rules.
func apiGatewayRoutes(l catalog.APIGatewayListener) []string {
	head := fmt.Sprintf(":%d %s", l.Port, cmp.Or(l.Protocol, catalog.ProtocolHTTP))
	if l.TLS != nil {
		var certs []string
		for _, c := range l.TLS.Certificates {
			certs = append(certs, c.Name)
		}
		head += " TLS (" + strings.Join(certs, ", ") + ")"
	}
	head += " listener " + l.Name
	var out []string
	for _, r := range l.TCPRoutes {
		out = append(out, fmt.Sprintf("%s: tcp-route %s → %s", head, r.Name, strings.Join(r.Services, ", ")))
	}
	for _, r := range l.HTTPRoutes {
		hosts := "any host"
		if len(r.Hostnames) > 0 {
			hosts = "Host " + strings.Join(r.Hostnames, ", ")
		}
		var rules []string
		for _, rule := range r.Rules {
			if rule.RequiresJWT || l.RequiresJWT {
				rules = append(rules, "refused (needs a JWT)")
				continue
			}
			var svcs []string
			for _, s := range rule.Services {
				svcs = append(svcs, s.Name)
			}
			rules = append(rules, strings.Join(svcs, "+"))
		}
		out = append(out, fmt.Sprintf("%s: http-route %s, %s → %s", head, r.Name, hosts, strings.Join(rules, "; ")))
	}
	if len(out) == 0 {
		out = append(out, head+": no route bound")
	}
	return out
}
