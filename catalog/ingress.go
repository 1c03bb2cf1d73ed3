package catalog

import (
	"slices"
	"strings"
)

// KindIngressGateway is the kind of an ingress gateway's registration.
const KindIngressGateway = "ingress-gateway"

// DNSDomain is Consul's default DNS domain, under which an ingress
// gateway's leaf certificate names "*.ingress.<domain>" and
// "*.ingress.<datacenter>.<domain>" when a snapshot names none
// (Snapshot.DNSDomains).
const DNSDomain = "consul"

// IngressGateway is an ingress-gateway config entry: the listeners of the
// gateway service of its Name, each routing outside traffic to services of
// the mesh.
type IngressGateway struct {
	Name string
	// TLS is the entry's gateway-level TLS: Enabled turns TLS on for
	// every listener; its versions and cipher suites apply to a listener
	// that does not set its own.
	TLS       IngressTLS
	Listeners []IngressListener
	// Unsupported names what the entry sets that Weft does not apply.
	Unsupported []string
	ModifyIndex uint64
}

// IngressTLS is TLS towards outside clients, as an ingress-gateway entry
// sets it (its TLS or a listener's): the gateway presents a leaf of the
// mesh's CA naming its hosts (IngressDNSNames) and asks for no client
// certificate.
type IngressTLS struct {
	Enabled bool
	// MinVersion and MaxVersion are Consul's names ("TLSv1_0" …
	// "TLSv1_3", "TLS_AUTO"); "" leaves the default.
	MinVersion, MaxVersion string
	// CipherSuites are the TLS 1.0-1.2 suites accepted, by IANA name
	// (as Consul spells them); none leaves the default.
	CipherSuites []string
}

// IngressListener is one port of an ingress gateway.
type IngressListener struct {
	Port     int
	Protocol string // tcp (default), http, http2 or grpc
	// TLS is the listener's own TLS, nil when it sets none.
	TLS      *IngressTLS
	Services []IngressService
}

// IngressService is a service an ingress listener routes to: by Host for
// HTTP listeners (default "<service>.ingress.*"), the one service of a TCP
// listener.
type IngressService struct {
	Name  string
	Hosts []string
}

// ListenerTLS is the TLS of one of g's listeners as Consul resolves it:
// on when the gateway or the listener enables it (a listener cannot turn
// off the gateway's), with the listener's versions and cipher suites
// where it sets them, else the gateway's. ok is false without TLS.
func (g *IngressGateway) ListenerTLS(l IngressListener) (tls IngressTLS, ok bool) {
	tls = IngressTLS{Enabled: g.TLS.Enabled, MinVersion: g.TLS.MinVersion, MaxVersion: g.TLS.MaxVersion, CipherSuites: g.TLS.CipherSuites}
	if o := l.TLS; o != nil {
		tls.Enabled = tls.Enabled || o.Enabled
		if o.MinVersion != "" {
			tls.MinVersion = o.MinVersion
		}
		if o.MaxVersion != "" {
			tls.MaxVersion = o.MaxVersion
		}
		if len(o.CipherSuites) > 0 {
			tls.CipherSuites = o.CipherSuites
		}
	}
	return tls, tls.Enabled
}

// tlsEnabled reports whether any listener of g has TLS.
func (g *IngressGateway) tlsEnabled() bool {
	return slices.ContainsFunc(g.Listeners, func(l IngressListener) bool {
		_, ok := g.ListenerTLS(l)
		return ok
	})
}

// IngressDNSNames are the DNS names the leaf certificate of g's gateway
// carries when TLS is on for one of its listeners, as Consul computes
// them: the Hosts of the services of every listener (TLS or not: one
// certificate serves the whole gateway), and, when it routes to a
// service, the wildcards "*.ingress.<domain>" and
// "*.ingress.<datacenter>.<domain>" of the default namespace for each of
// Consul's DNS domains (its domain and alt_domain; DNSDomain when none is
// given); sorted, each once. Nil when no listener has TLS. The control
// plane puts them in the listeners' configuration and its certificate
// service signs a leaf with exactly these names and no other: both call
// this one function.
func IngressDNSNames(g *IngressGateway, datacenter string, domains []string) []string {
	if g == nil || !g.tlsEnabled() {
		return nil
	}
	if len(domains) == 0 {
		domains = []string{DNSDomain}
	}
	names := []string{}
	for _, l := range g.Listeners {
		for _, s := range l.Services {
			for _, d := range domains {
				names = append(names, "*.ingress."+d, "*.ingress."+datacenter+"."+d)
			}
			for _, h := range s.Hosts {
				if h != "*" { // Consul allows "*" only without TLS
					names = append(names, strings.ToLower(h))
				}
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
