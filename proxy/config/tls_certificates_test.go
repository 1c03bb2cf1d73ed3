package config

import (
	"crypto/tls"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

// The shape of an API gateway's HTTPS listener (docs/xds.md, "API
// gateways"): TLS for clients outside the mesh, with certificates over SDS.

const (
	gwListener = "api-gateway:127.0.0.1:8443"
	gwCert     = "api-gateway-certificate/api"
	gwCert2    = "api-gateway-certificate/shop"
)

var h2h1 = []string{"h2", "http/1.1"}

// gatewayHTTPS is the gateway's HTTPS listener with ctx as its TLS.
func gatewayHTTPS(ctx *tlsv3.DownstreamTlsContext) *listenerv3.Listener {
	return xdstest.WithListenerTLS(xdstest.HTTPListenerRDS(gwListener, "127.0.0.1:8443", "api-gateway:https"), xdstest.TransportSocket(ctx))
}

// outsideTLS is the gateway's TLS context presenting gwCert, edited.
func outsideTLS(edit func(*tlsv3.DownstreamTlsContext)) *tlsv3.DownstreamTlsContext {
	ctx := xdstest.OutsideTLSContext(h2h1, gwCert)
	edit(ctx)
	return ctx
}

// certSecret is a tls_certificate secret named name for hosts.
func certSecret(t *testing.T, name string, hosts ...string) *tlsv3.Secret {
	pair := pkitest.NewCA(t, "gateway CA").IssuePEM(t, pkitest.LeafSpec{DNSNames: hosts})
	return xdstest.CertificateSecret(name, pair.CertPEM, pair.KeyPEM)
}

func TestCompileTLSForClientsOutsideTheMesh(t *testing.T) {
	tests := []struct {
		name string
		ctx  *tlsv3.DownstreamTlsContext
		want *mtls.Server
	}{
		{"as the control plane sends it", xdstest.OutsideTLSContext(h2h1, gwCert),
			&mtls.Server{MinVersion: tls.VersionTLS12, ALPN: h2h1, Certificates: []string{gwCert}}},
		{"two certificates, in order", xdstest.OutsideTLSContext(nil, gwCert2, gwCert),
			&mtls.Server{MinVersion: tls.VersionTLS12, Certificates: []string{gwCert2, gwCert}}},
		{"versions", outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_0, TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3}
		}), &mtls.Server{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS13, ALPN: h2h1, Certificates: []string{gwCert}}},
		{"TLS_AUTO is TLS 1.2 and up", outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{}
		}), &mtls.Server{MinVersion: tls.VersionTLS12, ALPN: h2h1, Certificates: []string{gwCert}}},
		{"cipher suites, one group of equals", outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.CipherSuites = []string{"[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]", "ECDHE-RSA-AES256-GCM-SHA384"}
		}), &mtls.Server{MinVersion: tls.VersionTLS12, ALPN: h2h1, Certificates: []string{gwCert}, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}},
		{"require_client_certificate false", outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.RequireClientCertificate = wrapperspb.Bool(false)
		}), &mtls.Server{MinVersion: tls.VersionTLS12, ALPN: h2h1, Certificates: []string{gwCert}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Compile(state(gatewayHTTPS(tt.ctx), certSecret(t, gwCert, "api.example.com"), certSecret(t, gwCert2, "shop.example.com")))
			if err != nil {
				t.Fatal(err)
			}
			l := rt.Listeners[0]
			if diff := cmp.Diff(tt.want, l.TLS, cmpTLS); diff != "" {
				t.Errorf("listener TLS (-want +got):\n%s", diff)
			}
			if l.Direction != Outbound || rt.UsesLeaf {
				t.Errorf("direction %s, UsesLeaf %v; want outbound and no mesh leaf: the listener serves clients outside the mesh", l.Direction, rt.UsesLeaf)
			}
			if got := rt.MissingCertificates(l); len(got) != 0 {
				t.Errorf("MissingCertificates = %q with every certificate received", got)
			}
		})
	}
}

// TestCompileCertificateSecrets: a tls_certificate secret is a chain and
// its key, inline_string or inline_bytes; it is compiled into
// Certificates, trust bundles stay in Secrets, and the listener
// subscribes to its certificates.
func TestCompileCertificateSecrets(t *testing.T) {
	pair := pkitest.NewCA(t, "gateway CA").IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"shop.example.com"}})
	asBytes := xdstest.CertificateSecret(gwCert2, nil, nil)
	asBytes.GetTlsCertificate().CertificateChain.Specifier = &corev3.DataSource_InlineBytes{InlineBytes: pair.CertPEM}
	asBytes.GetTlsCertificate().PrivateKey.Specifier = &corev3.DataSource_InlineBytes{InlineBytes: pair.KeyPEM}
	roots := pkitest.NewCA(t, "mesh")
	rt, err := Compile(state(gatewayHTTPS(xdstest.OutsideTLSContext(h2h1, gwCert, gwCert2)),
		certSecret(t, gwCert, "api.example.com"), asBytes, xdstest.RootsSecretOf(roots.PEM())))
	if err != nil {
		t.Fatal(err)
	}
	for name, host := range map[string]string{gwCert: "api.example.com", gwCert2: "shop.example.com"} {
		if c := rt.Certificates[name]; c == nil || c.Leaf.VerifyHostname(host) != nil || c.PrivateKey == nil {
			t.Errorf("Certificates[%q] = %v, want the certificate for %s with its key", name, c, host)
		}
	}
	if len(rt.Secrets) != 1 || rt.Secrets[RootsSecret] == nil {
		t.Errorf("Secrets = %v, want the trust bundle only", rt.Secrets)
	}
	want := xds.Subscriptions{Routes: []string{"api-gateway:https"}, Secrets: []string{gwCert, gwCert2}}
	if diff := cmp.Diff(want, rt.Subscriptions, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
}

// TestCertificatesWarm: a listener whose certificates have not all
// arrived compiles and subscribes to them; MissingCertificates names the
// missing ones, so that it is not served before they arrive.
func TestCertificatesWarm(t *testing.T) {
	l := gatewayHTTPS(xdstest.OutsideTLSContext(h2h1, gwCert, gwCert2))
	rt, err := Compile(state(l, certSecret(t, gwCert2, "shop.example.com")))
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.MissingCertificates(rt.Listeners[0]); !cmp.Equal(got, []string{gwCert}) {
		t.Errorf("MissingCertificates = %q, want [%q]", got, gwCert)
	}
	if got := rt.Subscriptions.Secrets; !cmp.Equal(got, []string{gwCert, gwCert2}) {
		t.Errorf("secret subscriptions = %q, want both certificates", got)
	}
	plain := xdstest.HTTPListenerRDS("plain", "127.0.0.1:8080", "r")
	rt, err = Compile(state(plain))
	if err != nil || rt.MissingCertificates(rt.Listeners[0]) != nil {
		t.Errorf("a plaintext listener: %v, missing %q; want none missing", err, rt.MissingCertificates(rt.Listeners[0]))
	}
}

func TestCompileRejectsTLSForClientsOutsideTheMesh(t *testing.T) {
	// "|" separates the resource prefix from the detail checked anywhere
	// after it.
	const gl = `listener "` + gwListener + `": filter chain 0: DownstreamTlsContext: |`
	ca := pkitest.NewCA(t, "gateway CA")
	pair, other := ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"api.example.com"}}), ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{"x"}})
	secret := func(edit func(*tlsv3.TlsCertificate)) *tlsv3.Secret {
		s := xdstest.CertificateSecret(gwCert, pair.CertPEM, pair.KeyPEM)
		edit(s.GetTlsCertificate())
		return s
	}
	ref := func(edit func(*tlsv3.SdsSecretConfig)) *listenerv3.Listener {
		return gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) { edit(c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0]) }))
	}
	tests := []struct {
		name    string
		in      []proto.Message
		wantErr string
	}{
		{"a mesh leaf besides", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = append(c.CommonTlsContext.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{Name: "weft-leaf"})
		}))}, gl + `common_tls_context: tls_certificate_sds_secret_configs[1]: secret "weft-leaf" is a mesh leaf: provided locally for mesh mTLS, never with or as a certificate over SDS`},
		{"another certificate without sds_config", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = append(c.CommonTlsContext.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{Name: "local"})
		}))}, gl + `tls_certificate_sds_secret_configs[1]: secret "local" has no sds_config: a listener presenting certificates over SDS takes every certificate over SDS (ads)`},
		{"the trust bundle as a certificate", []proto.Message{ref(func(sc *tlsv3.SdsSecretConfig) { sc.Name = RootsSecret })},
			gl + `tls_certificate_sds_secret_configs[0]: secret "weft-roots" is the mesh's trust bundle, not a certificate`},
		{"sds_config from a path", []proto.Message{ref(func(sc *tlsv3.SdsSecretConfig) {
			sc.SdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: "/x"}}}
		})}, gl + `tls_certificate_sds_secret_configs[0]: secret "` + gwCert + `": sds_config must be ads`},
		{"a certificate twice", []proto.Message{gatewayHTTPS(xdstest.OutsideTLSContext(h2h1, gwCert, gwCert))},
			gl + `tls_certificate_sds_secret_configs[1]: secret "` + gwCert + `" is listed twice`},
		{"client certificates required", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.RequireClientCertificate = wrapperspb.Bool(true)
		}))}, gl + `require_client_certificate: a listener presenting certificates over SDS serves clients outside the mesh and verifies no client certificate`},
		{"a validation context", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: RootsSecret, SdsConfig: xdstest.ADS()}}
		}))}, gl + `common_tls_context: validation_context_sds_secret_config: a listener presenting certificates over SDS serves clients outside the mesh`},
		{"inline certificates besides", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{}}
		}))}, gl + `common_tls_context: tls_certificates is not supported`},
		{"require_sni", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) { c.RequireSni = wrapperspb.Bool(true) }))},
			gl + `require_sni is not supported`},
		{"unknown cipher suite", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.CipherSuites = []string{"ECDHE-RSA-AES128-GCM-SHA256", "RC4-MD5"}
		}))}, gl + `common_tls_context: tls_params: cipher_suites[1]: unknown cipher suite "RC4-MD5"; want one of AES128-GCM-SHA256, AES128-SHA,`},
		{"a cipher suite's IANA name", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.CipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
		}))}, gl + `cipher_suites[0]: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" is the IANA name; Envoy's is "ECDHE-RSA-AES128-GCM-SHA256"`},
		{"a TLS 1.3 suite", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.CipherSuites = []string{"[ECDHE-RSA-AES128-GCM-SHA256|TLS_AES_128_GCM_SHA256]"}
		}))}, gl + `cipher_suites[0]: unknown cipher suite "TLS_AES_128_GCM_SHA256"`},
		{"ECDH curves", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.EcdhCurves = []string{"P-256"}
		}))}, gl + `tls_params: ecdh_curves is not supported`},
		{"maximum below minimum", []proto.Message{gatewayHTTPS(outsideTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLSv1_1
		}))}, gl + `tls_params: maximum version TLSv1_1 is below the minimum TLSv1_2`},
		{"secret: chain not PEM", []proto.Message{secret(func(tc *tlsv3.TlsCertificate) {
			tc.CertificateChain.Specifier = &corev3.DataSource_InlineString{InlineString: "not PEM"}
		})}, `secret "` + gwCert + `": |tls_certificate: tls: failed to find any PEM data in certificate input`},
		{"secret: key of another certificate", []proto.Message{secret(func(tc *tlsv3.TlsCertificate) {
			tc.PrivateKey.Specifier = &corev3.DataSource_InlineBytes{InlineBytes: other.KeyPEM}
		})}, `secret "` + gwCert + `": |tls_certificate: tls: private key does not match public key`},
		{"secret: no key", []proto.Message{secret(func(tc *tlsv3.TlsCertificate) { tc.PrivateKey = nil })},
			`secret "` + gwCert + `": |tls_certificate: private_key: empty`},
		{"secret: key from a file", []proto.Message{secret(func(tc *tlsv3.TlsCertificate) {
			tc.PrivateKey.Specifier = &corev3.DataSource_Filename{Filename: "/etc/gw.key"}
		})}, `secret "` + gwCert + `": |tls_certificate: private_key: only inline_bytes and inline_string are supported`},
		{"secret: a key password", []proto.Message{secret(func(tc *tlsv3.TlsCertificate) {
			tc.Password = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "x"}}
		})}, `secret "` + gwCert + `": |tls_certificate: password is not supported`},
		{"secret: named as the mesh leaf", []proto.Message{xdstest.CertificateSecret("weft-leaf/api", pair.CertPEM, pair.KeyPEM)},
			`secret "weft-leaf/api": |tls_certificate: "weft-leaf/api" names a mesh leaf or the trust bundle`},
		{"a trust bundle presented as a certificate", []proto.Message{gatewayHTTPS(xdstest.OutsideTLSContext(h2h1, "roots-too")),
			&tlsv3.Secret{Name: "roots-too", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: ca.PEM()}}}}}},
			`listener "` + gwListener + `": |secret "roots-too" is a trust bundle (validation_context); it is presented as a certificate`},
		{"a certificate named as a trust bundle", []proto.Message{
			upstream(func(c *tlsv3.UpstreamTlsContext) {
				combinedVC := c.CommonTlsContext.GetCombinedValidationContext()
				combinedVC.ValidationContextSdsSecretConfig.Name = gwCert
			}), xdstest.CertificateSecret(gwCert, pair.CertPEM, pair.KeyPEM)},
			`cluster "api.default.dc1": |secret "` + gwCert + `" is a certificate (tls_certificate); it is named as a trust bundle`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state(tt.in...))
			resource, detail, _ := strings.Cut(tt.wantErr, "|")
			if err == nil || !strings.HasPrefix(err.Error(), resource) || !strings.Contains(err.Error(), detail) {
				t.Errorf("Compile error:\n  %v\nwant it to start with %q and contain:\n  %s", err, resource, detail)
			}
		})
	}
}

// TestCipherSuiteNames: Envoy's (BoringSSL's) name of each suite maps to
// the Go suite of that IANA name, which Go supports below TLS 1.3.
func TestCipherSuiteNames(t *testing.T) {
	want := map[string]string{
		"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
		"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
		"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
		"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
		"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
		"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
		"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
		"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
	}
	got := map[string]string{}
	for envoy, id := range cipherSuites {
		got[envoy] = tls.CipherSuiteName(id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cipher suites (-want +got):\n%s", diff)
	}
	supported := map[uint16]bool{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		supported[s.ID] = s.SupportedVersions[0] < tls.VersionTLS13
	}
	for envoy, id := range cipherSuites {
		if !supported[id] {
			t.Errorf("%s maps to %s, which Go does not support below TLS 1.3", envoy, tls.CipherSuiteName(id))
		}
	}
}

// TestCertificatesOnSNIChains: a tls_inspector listener's tcp_proxy chain
// may present certificates over SDS too; the listener warms until every
// chain's certificates have arrived, and subscribes to them.
func TestCertificatesOnSNIChains(t *testing.T) {
	l := gatewayListener(
		sniChain("api", "api.default.dc1", xdstest.OutsideTLS(nil, gwCert), []string{"api.example.com"}),
		sniChain("shop", "shop.default.dc1", xdstest.OutsideTLS(nil, gwCert2), []string{"shop.example.com"}),
	)
	rt, err := Compile(state(l, certSecret(t, gwCert, "api.example.com")))
	if err != nil {
		t.Fatal(err)
	}
	chain := rt.Listeners[0].SNI.Match("shop.example.com")
	if chain == nil || chain.TLS == nil || !cmp.Equal(chain.TLS.Certificates, []string{gwCert2}) {
		t.Fatalf("shop's chain = %+v, want it presenting %s", chain, gwCert2)
	}
	if got := rt.MissingCertificates(rt.Listeners[0]); !cmp.Equal(got, []string{gwCert2}) {
		t.Errorf("MissingCertificates = %q, want [%q]", got, gwCert2)
	}
	if got := rt.Subscriptions.Secrets; !cmp.Equal(got, []string{gwCert, gwCert2}) {
		t.Errorf("secret subscriptions = %q, want both chains' certificates", got)
	}
}
