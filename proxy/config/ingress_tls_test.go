package config

import (
	"crypto/tls"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// The shape of an ingress gateway's TLS listener (docs/xds.md, "Ingress
// gateways"): TLS for clients outside the mesh, presenting the gateway's
// own leaf, whose DNS names the listener's metadata lists.

const ingressListener = "ingress:127.0.0.1:8080"

// ingressHTTPS is an ingress gateway's TLS listener with ctx, whose leaf
// carries names.
func ingressHTTPS(ctx *tlsv3.DownstreamTlsContext, names ...string) *listenerv3.Listener {
	l := xdstest.WithListenerTLS(xdstest.HTTPListenerRDS(ingressListener, "127.0.0.1:8080", "ingress:8080"), xdstest.TransportSocket(ctx))
	return xdstest.WithIngressDNSNames(l, names...)
}

func TestCompileIngressTLS(t *testing.T) {
	names := []string{"*.ingress.consul", "api.example.com"}
	other := xdstest.WithIngressDNSNames(xdstest.WithListenerTLS(xdstest.TCPListener("ingress:127.0.0.1:9000", "127.0.0.1:9000", "db"),
		xdstest.TransportSocket(xdstest.IngressTLSContext(nil))), "db.example.com", "API.example.com")
	rt, err := Compile(state(ingressHTTPS(xdstest.IngressTLSContext(h2h1), names...), other, xdstest.StaticCluster("db"), xdstest.RouteConfig("ingress:8080", "db")))
	if err != nil {
		t.Fatal(err)
	}
	l := rt.Listeners[0]
	want := &mtls.Server{MinVersion: tls.VersionTLS12, ALPN: h2h1, Certificates: []string{IngressLeafSecret}}
	if diff := cmp.Diff(want, l.TLS, cmpTLS); diff != "" {
		t.Errorf("listener TLS (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&IngressLeaf{DNSNames: []string{"*.ingress.consul", "api.example.com", "db.example.com"}}, rt.IngressLeaf); diff != "" {
		t.Errorf("IngressLeaf (-want +got):\n%s", diff)
	}
	if l.Gateway != IngressGateway || rt.UsesLeaf {
		t.Errorf("gateway %s, UsesLeaf %v; want an ingress gateway's listener presenting no mesh leaf", l.Gateway, rt.UsesLeaf)
	}
	for _, s := range rt.Subscriptions.Secrets {
		if s == IngressLeafSecret {
			t.Errorf("subscribes to %q over SDS; the proxy holds it", s)
		}
	}
	if got := rt.MissingCertificates(l); !cmp.Equal(got, []string{IngressLeafSecret}) {
		t.Errorf("MissingCertificates = %q before the leaf is there, want it", got)
	}
	with := rt.WithCertificate(IngressLeafSecret, certSecretCert(t))
	if got := with.MissingCertificates(with.Listeners[0]); len(got) != 0 || len(rt.Certificates) != 0 {
		t.Errorf("MissingCertificates = %q with the leaf; the runtime it came from has %d certificates, want none", got, len(rt.Certificates))
	}
}

func certSecretCert(t *testing.T) *tls.Certificate {
	pair := pkitest.NewCA(t, "mesh").IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"api.example.com"}})
	cert, err := mtls.ParseCertificate(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCompileRejectsIngressTLS(t *testing.T) {
	const il = `listener "` + ingressListener + `": |`
	edit := func(f func(*tlsv3.DownstreamTlsContext)) *tlsv3.DownstreamTlsContext {
		ctx := xdstest.IngressTLSContext(h2h1)
		f(ctx)
		return ctx
	}
	tests := []struct {
		name    string
		l       *listenerv3.Listener
		wantErr string
	}{
		{"over SDS", ingressHTTPS(edit(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].SdsConfig = xdstest.ADS()
		}), "a.example.com"), il + `tls_certificate_sds_secret_configs[0]: secret "weft-ingress-leaf" is the ingress gateway's leaf, which the proxy has signed itself: reference it without sds_config`},
		{"with another certificate", ingressHTTPS(edit(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = append(c.CommonTlsContext.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{Name: gwCert, SdsConfig: xdstest.ADS()})
		}), "a.example.com"), il + `tls_certificate_sds_secret_configs[0]: secret "weft-ingress-leaf" is presented alone, not with other certificates (have 2)`},
		{"a client certificate", ingressHTTPS(edit(func(c *tlsv3.DownstreamTlsContext) {
			c.RequireClientCertificate.Value = true
		}), "a.example.com"), il + `require_client_certificate: a listener presenting certificates over SDS serves clients outside the mesh`},
		{"no DNS names", xdstest.WithListenerTLS(xdstest.HTTPListenerRDS(ingressListener, "127.0.0.1:8080", "ingress:8080"), xdstest.TransportSocket(xdstest.IngressTLSContext(h2h1))),
			il + `metadata: a listener presenting "weft-ingress-leaf" needs filter_metadata["weft"].ingress_dns_names`},
		{"DNS names not a list", func() *listenerv3.Listener {
			l := ingressHTTPS(xdstest.IngressTLSContext(h2h1))
			l.Metadata.FilterMetadata["weft"].Fields["ingress_dns_names"] = structpb.NewStringValue("a.example.com")
			return l
		}(), il + `metadata: filter_metadata["weft"].ingress_dns_names must be a list of DNS names`},
		{"not a DNS name", ingressHTTPS(xdstest.IngressTLSContext(h2h1), "a.example.com", "a b"),
			il + `metadata: filter_metadata["weft"].ingress_dns_names[1]: "a b" is not a DNS name`},
		{"a wildcard not first", ingressHTTPS(xdstest.IngressTLSContext(h2h1), "a.*.com"),
			il + `ingress_dns_names[0]: "a.*.com" is not a DNS name`},
		{"DNS names on a plaintext listener", xdstest.WithIngressDNSNames(xdstest.HTTPListenerRDS(ingressListener, "127.0.0.1:8080", "ingress:8080"), "a.example.com"),
			il + `metadata: filter_metadata["weft"].ingress_dns_names is for a listener presenting "weft-ingress-leaf"; this one does not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state([]proto.Message{tt.l, xdstest.RouteConfig("ingress:8080", "db"), xdstest.StaticCluster("db")}...))
			prefix, detail, _ := strings.Cut(tt.wantErr, "|")
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), detail) {
				t.Fatalf("Compile error = %v, want %q…%q", err, prefix, detail)
			}
		})
	}
}
