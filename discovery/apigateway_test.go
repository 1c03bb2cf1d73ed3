package discovery

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/catalog/catalogtest"
)

// readEntries decodes config entries as Consul's documentation writes
// them in JSON, with Consul's own API package (Consul 1.14 cannot store
// these kinds, so no end-to-end test can write them).
func readEntries(t *testing.T, dir string, files ...string) []api.ConfigEntry {
	t.Helper()
	var out []api.ConfigEntry
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join("testdata", dir, f))
		if err != nil {
			t.Fatal(err)
		}
		e, err := api.DecodeConfigEntryFromJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, e)
	}
	return out
}

// TestAPIGatewayFromDocumentedJSON: an api-gateway with an HTTPS, an HTTP
// and a TCP listener, an http-route bound to both HTTP listeners, a
// tcp-route and an inline certificate join into one gateway, every field
// applied or reported.
func TestAPIGatewayFromDocumentedJSON(t *testing.T) {
	entries := readEntries(t, "api-gateway", "api-gateway.json", "http-route.json", "tcp-route.json", "inline-certificate.json")
	s := apiGatewayState{
		gateways: convertAPIGateways(entries),
		http:     convertHTTPRoutes(entries),
		tcp:      convertTCPRoutes(entries),
		certs:    convertInlineCertificates(entries),
	}
	cert := entries[3].(*api.InlineCertificateConfigEntry)
	route := catalogtest.DocumentedHTTPRoute()
	want := map[string]*catalog.APIGateway{"my-gateway": {
		Name: "my-gateway",
		Listeners: []catalog.APIGatewayListener{
			{Name: "my-https-listener", Hostname: "*.example.com", Port: 8443, Protocol: "http", HTTPRoutes: []*catalog.HTTPRoute{route},
				TLS: &catalog.GatewayTLS{MinVersion: "TLSv1_2", Certificates: []*catalog.InlineCertificate{
					{Name: "my-certificate", Certificate: cert.Certificate, PrivateKey: cert.PrivateKey}}}},
			{Name: "my-http-listener", Port: 8080, Protocol: "http", HTTPRoutes: []*catalog.HTTPRoute{route}},
			{Name: "my-tcp-listener", Port: 9000, Protocol: "tcp", TCPRoutes: []*catalog.TCPRoute{{Name: "my-tcp-route", Services: []string{"db"}}}},
		},
		Unsupported: []string{`http-route "my-http-route": Rules[2].Filters.JWT (enforced as a refusal: Weft cannot verify JWTs)`},
	}}
	if diff := cmp.Diff(want, s.join()); diff != "" {
		t.Errorf("joined gateway (-want +got):\n%s", diff)
	}
}

// TestAPIGatewayJoinProblems: what cannot be bound is named, and the rest
// of the gateway is kept.
func TestAPIGatewayJoinProblems(t *testing.T) {
	gw := &api.APIGatewayConfigEntry{Kind: api.APIGateway, Name: "gw", Listeners: []api.APIGatewayListener{
		{Name: "web", Port: 443, Protocol: "http", TLS: api.APIGatewayTLSConfiguration{Certificates: []api.ResourceReference{
			{Kind: api.InlineCertificate, Name: "missing"}, {Kind: api.FileSystemCertificate, Name: "on-disk"}}}},
		{Name: "raw", Port: 9000, Protocol: "tcp"},
	}}
	entries := []api.ConfigEntry{gw,
		&api.HTTPRouteConfigEntry{Kind: api.HTTPRoute, Name: "to-raw", Parents: []api.ResourceReference{{Name: "gw", SectionName: "raw"}}},
		&api.HTTPRouteConfigEntry{Kind: api.HTTPRoute, Name: "to-nowhere", Parents: []api.ResourceReference{{Name: "gw", SectionName: "nope"}}},
		&api.TCPRouteConfigEntry{Kind: api.TCPRoute, Name: "tcp-to-web", Parents: []api.ResourceReference{{Name: "gw", SectionName: "web"}}},
		&api.HTTPRouteConfigEntry{Kind: api.HTTPRoute, Name: "other-gateway", Parents: []api.ResourceReference{{Name: "elsewhere"}}},
	}
	s := apiGatewayState{gateways: convertAPIGateways(entries), http: convertHTTPRoutes(entries), tcp: convertTCPRoutes(entries), certs: convertInlineCertificates(entries)}
	got := s.join()["gw"]
	wantProblems := []string{
		`listener "web" names inline-certificate "missing", which does not exist`,
		`tcp-route "tcp-to-web" is bound to listener "web", which is not tcp; it is left out`,
		`http-route "to-raw" is bound to listener "raw", which is tcp; it is left out`,
		`http-route "to-nowhere" names listener "nope", which api-gateway "gw" does not have`,
	}
	if diff := cmp.Diff(wantProblems, got.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`Listeners[0].TLS.Certificates[1].Kind = "file-system-certificate"`}, got.Unsupported); diff != "" {
		t.Errorf("unsupported (-want +got):\n%s", diff)
	}
	if l := got.Listeners[0]; l.TLS == nil || len(l.TLS.Certificates) != 0 || len(l.HTTPRoutes) != 0 || len(l.TCPRoutes) != 0 {
		t.Errorf("listener web: %+v, want TLS without certificates and no routes", l)
	}
}
