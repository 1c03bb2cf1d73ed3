package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

var cmpTLS = cmp.Options{cmp.Comparer(match.String.Equal), cmpopts.EquateEmpty()}

func publicTCP() *listenerv3.Listener {
	return xdstest.WithListenerTLS(xdstest.TCPListener("public_listener", "127.0.0.1:21000", "local_app"), xdstest.DownstreamTLS("weft.local"))
}

func TestCompileMTLS(t *testing.T) {
	ca := pkitest.NewCA(t, "root")
	apiID := "spiffe://weft.local/ns/default/dc/dc1/svc/api"
	rt, err := Compile(state(
		xdstest.WithListenerTLS(xdstest.HTTPListenerInline("public_listener", "127.0.0.1:21000", xdstest.RouteConfig("local_app", "local_app")),
			xdstest.DownstreamTLS("weft.local", "h2", "http/1.1")),
		xdstest.StaticCluster("local_app", xdstest.Endpoint("127.0.0.1:8080")),
		xdstest.WithClusterTLS(xdstest.EDSCluster(api), xdstest.UpstreamTLS(api, apiID, "h2", "http/1.1")),
		xdstest.RootsSecretOf(pkitest.Bundle(ca)),
	))
	if err != nil {
		t.Fatal(err)
	}
	wantServer := &mtls.Server{MinVersion: tls.VersionTLS12, ALPN: []string{"h2", "http/1.1"}, RequireClientCert: true, TrustBundle: RootsSecret,
		PeerURISANs: []match.String{match.MustString(match.Prefix, "spiffe://weft.local/", false)}}
	if diff := cmp.Diff(wantServer, rt.Listeners[0].TLS, cmpTLS); diff != "" {
		t.Errorf("listener TLS (-want +got):\n%s", diff)
	}
	wantClient := &mtls.Client{SNI: api, MinVersion: tls.VersionTLS12, ALPN: []string{"h2", "http/1.1"}, TrustBundle: RootsSecret,
		PeerURISANs: []match.String{match.MustString(match.Exact, apiID, false)}}
	if diff := cmp.Diff(wantClient, rt.Clusters[api].TLS, cmpTLS); diff != "" {
		t.Errorf("cluster TLS (-want +got):\n%s", diff)
	}
	if rt.Clusters["local_app"].TLS != nil {
		t.Error("local_app got TLS")
	}
	if b := rt.Secrets[RootsSecret]; b == nil || len(b.Roots) != 1 || !b.Roots[0].Equal(ca.Cert) {
		t.Errorf("secrets = %v, want the bundle of one root", rt.Secrets)
	}
	if diff := cmp.Diff(xds.Subscriptions{Endpoints: []string{api}, Secrets: []string{RootsSecret}}, rt.Subscriptions, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
	if !rt.UsesLeaf {
		t.Error("UsesLeaf = false")
	}
}

// TestCompileMeshTLSParams: the versions and TLS 1.2 cipher suites of
// mesh TLS (Consul's mesh entry TLS.Incoming and TLS.Outgoing, as the
// control plane sends them) reach the listener's and the cluster's TLS.
func TestCompileMeshTLSParams(t *testing.T) {
	params := &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2, TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
		CipherSuites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}}
	withParams := func(ts *corev3.TransportSocket, ctx interface {
		GetCommonTlsContext() *tlsv3.CommonTlsContext
	}) *corev3.TransportSocket {
		if err := ts.GetTypedConfig().UnmarshalTo(ctx.(proto.Message)); err != nil {
			t.Fatal(err)
		}
		ctx.GetCommonTlsContext().TlsParams = params
		any, err := anypb.New(ctx.(proto.Message))
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.TransportSocket{Name: ts.Name, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: any}}
	}
	apiID := "spiffe://weft.local/ns/default/dc/dc1/svc/api"
	rt, err := Compile(state(
		xdstest.WithListenerTLS(xdstest.HTTPListenerInline("public_listener", "127.0.0.1:21000", xdstest.RouteConfig("local_app", "local_app")),
			withParams(xdstest.DownstreamTLS("weft.local", "h2"), &tlsv3.DownstreamTlsContext{})),
		xdstest.StaticCluster("local_app", xdstest.Endpoint("127.0.0.1:8080")),
		xdstest.WithClusterTLS(xdstest.EDSCluster(api), withParams(xdstest.UpstreamTLS(api, apiID, "h2"), &tlsv3.UpstreamTlsContext{})),
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	if s := rt.Listeners[0].TLS; s.MaxVersion != tls.VersionTLS12 || !slices.Equal(s.CipherSuites, want) {
		t.Errorf("listener TLS max %x suites %v, want TLS 1.2 and %v", s.MaxVersion, s.CipherSuites, want)
	}
	if c := rt.Clusters[api].TLS; c.MaxVersion != tls.VersionTLS12 || !slices.Equal(c.CipherSuites, want) {
		t.Errorf("cluster TLS max %x suites %v, want TLS 1.2 and %v", c.MaxVersion, c.CipherSuites, want)
	}
}

// TestCompileWarmsWithoutSecret: a TLS listener whose bundle has not
// arrived compiles (its handshakes fail until it does) and subscribes to it.
func TestCompileWarmsWithoutSecret(t *testing.T) {
	rt, err := Compile(state(publicTCP()))
	if err != nil {
		t.Fatal(err)
	}
	if rt.Listeners[0].TLS == nil || rt.Secrets[RootsSecret] != nil {
		t.Errorf("listener TLS %v, secrets %v", rt.Listeners[0].TLS, rt.Secrets)
	}
	if len(rt.Subscriptions.Secrets) != 1 || rt.Subscriptions.Secrets[0] != RootsSecret {
		t.Errorf("secret subscriptions = %v", rt.Subscriptions.Secrets)
	}
}

func TestCompileWithoutTLSUsesNoLeaf(t *testing.T) {
	rt, err := Compile(state(xdstest.TCPListener("l", "127.0.0.1:1", "c")))
	if err != nil || rt.UsesLeaf || len(rt.Subscriptions.Secrets) != 0 {
		t.Errorf("Compile = %+v, %v", rt, err)
	}
}

// downstream returns the public listener with its TLS context edited.
func downstream(edit func(*tlsv3.DownstreamTlsContext)) *listenerv3.Listener {
	l := publicTCP()
	var ctx tlsv3.DownstreamTlsContext
	if err := l.FilterChains[0].TransportSocket.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		panic(err)
	}
	edit(&ctx)
	l.FilterChains[0].TransportSocket = xdstest.TransportSocket(&ctx)
	return l
}

func upstream(edit func(*tlsv3.UpstreamTlsContext)) *clusterv3.Cluster {
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := xdstest.UpstreamTLS(api, "spiffe://weft.local/ns/default/dc/dc1/svc/api").GetTypedConfig().UnmarshalTo(ctx); err != nil {
		panic(err)
	}
	edit(ctx)
	return xdstest.WithClusterTLS(xdstest.EDSCluster(api), xdstest.TransportSocket(ctx))
}

func combined(c *tlsv3.CommonTlsContext) *tlsv3.CommonTlsContext_CombinedCertificateValidationContext {
	return c.GetCombinedValidationContext()
}

func TestCompileRejectsTLS(t *testing.T) {
	// Errors start with the resource's kind and name; "|" separates that
	// from the detail checked anywhere after it.
	const pl = `listener "public_listener": filter chain 0: |`
	const cl = `cluster "api.default.dc1": |`
	tests := []struct {
		name    string
		in      proto.Message
		wantErr string
	}{
		{"raw buffer transport socket", xdstest.WithListenerTLS(xdstest.TCPListener("public_listener", "127.0.0.1:1", "c"),
			xdstest.TransportSocket(&wrapperspb.StringValue{})), pl + `transport socket "envoy.transport_sockets.tls" (type.googleapis.com/google.protobuf.StringValue) is not supported`},
		{"upstream context on a listener", xdstest.WithListenerTLS(xdstest.TCPListener("public_listener", "127.0.0.1:1", "c"),
			xdstest.UpstreamTLS("x", "spiffe://weft.local/x")), pl + `transport socket "envoy.transport_sockets.tls" (type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext) is not supported`},
		{"inline certificate and key", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{}}
		}), pl + `DownstreamTlsContext: common_tls_context: tls_certificates is not supported`},
		{"no local certificate", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = nil
		}), pl + `tls_certificate_sds_secret_configs: want exactly one, the secret "weft-leaf" or "weft-leaf/<service>", have 0`},
		{"other local secret without sds_config", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = "my-cert"
		}), pl + `DownstreamTlsContext: common_tls_context: tls_certificate_sds_secret_configs: secret "my-cert" has no sds_config and is not "weft-leaf"`},
		{"certificate over SDS", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].SdsConfig = xdstest.ADS()
		}), pl + `tls_certificate_sds_secret_configs[0]: secret "weft-leaf" is a mesh leaf: provided locally for mesh mTLS, never with or as a certificate over SDS`},
		{"no validation context", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = nil
		}), pl + `DownstreamTlsContext: common_tls_context: a validation context with a trust bundle over SDS is required`},
		{"inline validation context", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}}
		}), pl + `DownstreamTlsContext: common_tls_context: validation_context: needs trusted_ca or custom_validator_config`},
		{"inline validation from a file", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/roots.pem"}}}}
		}), pl + `validation_context: trusted_ca: only inline_bytes and inline_string are supported`},
		{"inline validation, bad PEM", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "nope"}}}}
		}), pl + `validation_context: trusted_ca: no PEM certificates`},
		{"SPIFFE validator without trust domains", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CustomValidatorConfig: &corev3.TypedExtensionConfig{Name: "envoy.tls.cert_validator.spiffe", TypedConfig: xdstest.Any(&tlsv3.SPIFFECertValidatorConfig{})}}}
		}), pl + `validation_context: custom_validator_config: filter "envoy.tls.cert_validator.spiffe": invalid: invalid SPIFFECertValidatorConfig.TrustDomains: value must contain at least 1 item(s)`},
		{"SPIFFE validator, a trust domain twice", downstream(func(c *tlsv3.DownstreamTlsContext) {
			td := &tlsv3.SPIFFECertValidatorConfig_TrustDomain{Name: "peer.consul", TrustBundle: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "x"}}}
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CustomValidatorConfig: &corev3.TypedExtensionConfig{Name: "envoy.tls.cert_validator.spiffe", TypedConfig: xdstest.Any(&tlsv3.SPIFFECertValidatorConfig{TrustDomains: []*tlsv3.SPIFFECertValidatorConfig_TrustDomain{td, td}})}}}
		}), pl + `trust_domains[1]: "peer.consul" is listed twice`},
		{"bundle without sds_config", downstream(func(c *tlsv3.DownstreamTlsContext) {
			combined(c.CommonTlsContext).ValidationContextSdsSecretConfig.SdsConfig = nil
		}), pl + `validation secret "weft-roots" has no sds_config`},
		{"bundle from a path", downstream(func(c *tlsv3.DownstreamTlsContext) {
			combined(c.CommonTlsContext).ValidationContextSdsSecretConfig.SdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: "/x"}}}
		}), pl + `validation secret "weft-roots": sds_config must be ads`},
		{"DNS SAN matcher", downstream(func(c *tlsv3.DownstreamTlsContext) {
			combined(c.CommonTlsContext).DefaultValidationContext.MatchTypedSubjectAltNames[0].SanType = tlsv3.SubjectAltNameMatcher_DNS
		}), pl + `match_typed_subject_alt_names[0]: san_type DNS is not supported`},
		{"untyped SAN matcher", downstream(func(c *tlsv3.DownstreamTlsContext) {
			//lint:ignore SA1019 testing that the deprecated field is rejected.
			combined(c.CommonTlsContext).DefaultValidationContext.MatchSubjectAltNames = []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x"}}}
		}), pl + `default_validation_context: match_subject_alt_names is not supported`},
		{"untrusted chains accepted", downstream(func(c *tlsv3.DownstreamTlsContext) {
			combined(c.CommonTlsContext).DefaultValidationContext.TrustChainVerification = tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED
		}), pl + `default_validation_context: trust_chain_verification is not supported`},
		{"bad SAN regex", downstream(func(c *tlsv3.DownstreamTlsContext) {
			combined(c.CommonTlsContext).DefaultValidationContext.MatchTypedSubjectAltNames[0].Matcher = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "("}}}
		}), pl + `match_typed_subject_alt_names[0]: safe_regex "("`},
		{"require_sni", downstream(func(c *tlsv3.DownstreamTlsContext) { c.RequireSni = wrapperspb.Bool(true) }),
			pl + `DownstreamTlsContext: require_sni is not supported`},
		{"unknown cipher suite", downstream(func(c *tlsv3.DownstreamTlsContext) { c.CommonTlsContext.TlsParams.CipherSuites = []string{"x"} }),
			pl + `tls_params: cipher_suites[0]: unknown cipher suite "x"`},
		{"max below min", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLSv1_1
		}), pl + `tls_params: maximum version TLSv1_1 is below the minimum TLSv1_2`},
		{"upstream auto SNI", upstream(func(c *tlsv3.UpstreamTlsContext) { c.AutoHostSni = true }),
			cl + `UpstreamTlsContext: auto_host_sni is not supported`},
		{"upstream inline validation", upstream(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}}
		}), cl + `UpstreamTlsContext: common_tls_context: validation_context: needs trusted_ca or custom_validator_config`},
		{"secret without certificates", xdstest.RootsSecretOf([]byte("not pem")),
			`secret "weft-roots": |validation_context: trusted_ca: no PEM certificates`},
		{"secret with a bad certificate", xdstest.RootsSecretOf([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")),
			`secret "weft-roots": |validation_context: trusted_ca: certificate 0:`},
		{"secret with a key", &tlsv3.Secret{Name: "weft-roots", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}},
			`secret "weft-roots": |tls_certificate: "weft-roots" names a mesh leaf or the trust bundle, which never come as certificates over SDS`},
		{"secret of another kind", &tlsv3.Secret{Name: "ticket-keys", Type: &tlsv3.Secret_SessionTicketKeys{SessionTicketKeys: &tlsv3.TlsSessionTicketKeys{}}},
			`secret "ticket-keys": |session_ticket_keys is not supported: want validation_context (a trust bundle) or tls_certificate (a certificate for clients outside the mesh)`},
		{"upstream certificate over SDS", upstream(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0] = &tlsv3.SdsSecretConfig{Name: "client-cert", SdsConfig: xdstest.ADS()}
		}), cl + `UpstreamTlsContext: common_tls_context: tls_certificate_sds_secret_configs: secret "client-cert": certificates with private keys over SDS are presented only by listeners to clients outside the mesh`},
		{"secret from a file", &tlsv3.Secret{Name: "weft-roots", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/ca.pem"}}}}},
			`secret "weft-roots": |validation_context: trusted_ca must be inline_bytes or inline_string`},
		{"secret with SAN matchers", &tlsv3.Secret{Name: "weft-roots", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x"}}}}}}},
			`secret "weft-roots": |validation_context: match_typed_subject_alt_names is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state(tt.in))
			resource, detail, _ := strings.Cut(tt.wantErr, "|")
			if err == nil || !strings.HasPrefix(err.Error(), resource) || !strings.Contains(err.Error(), detail) {
				t.Errorf("Compile error:\n  %v\nwant it to start with %q and contain:\n  %s", err, resource, detail)
			}
		})
	}
}
