package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"log/slog"
	"slices"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/certs"
)

func TestSidecarFor(t *testing.T) {
	snap := &catalog.Snapshot{Proxies: map[string]*catalog.Proxy{
		"web-1-sidecar-proxy": {ID: "web-1-sidecar-proxy", DestinationName: "web", DestinationID: "web-1"},
		"api-1-sidecar-proxy": {ID: "api-1-sidecar-proxy", DestinationName: "api", DestinationID: "api-1"},
		"api-1-extra-proxy":   {ID: "api-1-extra-proxy", DestinationName: "api", DestinationID: "api-1"},
	}}
	tests := []struct {
		serviceID string
		want      string
		code      codes.Code
		message   string
	}{
		{serviceID: "web-1", want: "web-1-sidecar-proxy"},
		{serviceID: "db-1", code: codes.NotFound, message: `no sidecar proxy is registered in Consul for service instance "db-1"`},
		{serviceID: "api-1", code: codes.FailedPrecondition,
			message: `service instance "api-1" has 2 sidecar proxies registered (api-1-extra-proxy, api-1-sidecar-proxy): name one with --proxy-id`},
		{serviceID: "", code: codes.InvalidArgument, message: "name a service_id"},
	}
	for _, tt := range tests {
		t.Run(tt.serviceID, func(t *testing.T) {
			p, err := sidecarFor(snap, tt.serviceID)
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.message {
				t.Fatalf("error %v; want %v %q", err, tt.code, tt.message)
			}
			if tt.want != "" && (p == nil || p.ID != tt.want) {
				t.Fatalf("proxy %+v; want %s", p, tt.want)
			}
		})
	}
}

// TestServiceToSign: which identity each kind of proxy may have a
// certificate for.
func TestServiceToSign(t *testing.T) {
	snap := &catalog.Snapshot{
		Proxies: map[string]*catalog.Proxy{
			"web-1-sidecar-proxy": {ID: "web-1-sidecar-proxy", DestinationName: "web", DestinationID: "web-1"},
			"ingress-1":           {ID: "ingress-1", Name: "ingress", Kind: catalog.KindIngressGateway},
			"mgw-1":               {ID: "mgw-1", Name: "mgw", Kind: catalog.KindMeshGateway},
			"tgw-1":               {ID: "tgw-1", Name: "tgw", Kind: catalog.KindTerminatingGateway},
		},
		TerminatingGateways: map[string]*catalog.TerminatingGateway{"tgw": {Name: "tgw", Services: []catalog.LinkedService{{Name: "ext"}}}},
	}
	tests := []struct {
		name, proxyID, service string
		want                   string
		code                   codes.Code
		message                string
	}{
		{name: "sidecar", proxyID: "web-1-sidecar-proxy", want: "web"},
		{name: "sidecar naming its own service", proxyID: "web-1-sidecar-proxy", service: "web", want: "web"},
		{name: "sidecar naming another service", proxyID: "web-1-sidecar-proxy", service: "api", code: codes.InvalidArgument,
			message: `proxy "web-1-sidecar-proxy" may only have a certificate for "web", not "api"`},
		{name: "ingress gateway", proxyID: "ingress-1", want: "ingress"},
		{name: "mesh gateway", proxyID: "mgw-1", code: codes.FailedPrecondition, message: `proxy "mgw-1" is a mesh-gateway, which holds no certificate`},
		{name: "terminating gateway, linked service", proxyID: "tgw-1", service: "ext", want: "ext"},
		{name: "terminating gateway, itself", proxyID: "tgw-1", want: "tgw"},
		{name: "terminating gateway, service not linked", proxyID: "tgw-1", service: "db", code: codes.PermissionDenied,
			message: `service "db" is not linked to terminating gateway "tgw-1": add it to the terminating-gateway entry "tgw"`},
		{name: "proxyless", service: "batch", want: "batch"},
		{name: "unknown proxy", proxyID: "nope", code: codes.NotFound, message: `proxy "nope" is not a registered sidecar in Consul`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := serviceToSign(snap, &certsv1.SignRequest{ProxyId: tt.proxyID, Service: tt.service})
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.message {
				t.Fatalf("error %v; want %v %q", err, tt.code, tt.message)
			}
			if got != tt.want {
				t.Errorf("service %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignDNSNames: an ingress gateway's leaf carries the DNS names its
// ingress-gateway entry allows, and no other; no other proxy's leaf
// carries any.
func TestSignDNSNames(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("weft.test")
	ca, err := certs.OpenAuthority(certs.AuthorityConfig{TrustDomain: td, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	entry := &catalog.IngressGateway{Name: "ingress", TLS: catalog.IngressTLS{Enabled: true}, Listeners: []catalog.IngressListener{
		{Port: 8080, Protocol: "http", Services: []catalog.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}}}}}
	snap := &catalog.Snapshot{Datacenter: "dc1",
		Proxies: map[string]*catalog.Proxy{
			"ingress-1":         {ID: "ingress-1", Name: "ingress", Kind: catalog.KindIngressGateway},
			"plain-1":           {ID: "plain-1", Name: "plain", Kind: catalog.KindIngressGateway},
			"web-sidecar-proxy": {ID: "web-sidecar-proxy", DestinationName: "web"},
			"terminating-1":     {ID: "terminating-1", Name: "terminating", Kind: catalog.KindTerminatingGateway},
		},
		IngressGateways: map[string]*catalog.IngressGateway{"ingress": entry, "plain": {Name: "plain"}},
	}
	s := &certService{ca: ca, authz: fakeAuthz{"": {"ingress", "plain", "web", "terminating"}}, catalog: func() *catalog.Snapshot { return snap },
		logger: slog.New(slog.DiscardHandler), issued: map[string]string{}}
	tests := []struct {
		name    string
		proxyID string
		dns     []string
		code    codes.Code
		message string
	}{
		{name: "ingress, all allowed", proxyID: "ingress-1", dns: []string{"api.example.com", "*.ingress.consul", "*.ingress.dc1.consul"}},
		{name: "ingress, none", proxyID: "ingress-1"},
		{name: "ingress, a name not allowed", proxyID: "ingress-1", dns: []string{"api.example.com", "evil.example.com"}, code: codes.PermissionDenied,
			message: `sign for ingress gateway "ingress-1": DNS name "evil.example.com" is not allowed: its ingress-gateway entry "ingress" allows *.ingress.consul, *.ingress.dc1.consul, api.example.com`},
		{name: "ingress without TLS", proxyID: "plain-1", dns: []string{"api.example.com"}, code: codes.PermissionDenied,
			message: `sign for ingress gateway "plain-1": DNS name "api.example.com" is not allowed: its ingress-gateway entry "plain" enables no TLS, so its leaf carries no DNS name`},
		{name: "sidecar", proxyID: "web-sidecar-proxy", dns: []string{"web.example.com"}, code: codes.InvalidArgument,
			message: `sign for proxy "web-sidecar-proxy": the CSR asks for DNS name "web.example.com": only an ingress gateway's leaf carries DNS names (its hosts, when its ingress-gateway entry enables TLS)`},
		{name: "terminating gateway", proxyID: "terminating-1", dns: []string{"api.example.com"}, code: codes.InvalidArgument,
			message: `sign for terminating gateway "terminating-1": the CSR asks for DNS name "api.example.com": only an ingress gateway's leaf carries DNS names (its hosts, when its ingress-gateway entry enables TLS)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: tt.dns}, key)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.Sign(context.Background(), &certsv1.SignRequest{ProxyId: tt.proxyID, Csr: csr})
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.message {
				t.Fatalf("error %v; want %v %q", err, tt.code, tt.message)
			}
			if tt.code != codes.OK {
				return
			}
			leaf, err := x509.ParseCertificate(resp.GetCertificate())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(leaf.DNSNames, tt.dns) {
				t.Errorf("leaf DNS names %q, want %q", leaf.DNSNames, tt.dns)
			}
		})
	}
}
