package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// Secret names of the mTLS contract (docs/xds.md).
const (
	// LeafSecret names the sidecar's own certificate. It is referenced
	// without sds_config and provided by the identity manager, never
	// fetched over xDS.
	LeafSecret = "weft-leaf"
	// LinkedLeafPrefix starts the name of a linked service's certificate,
	// "weft-leaf/<service>", which a terminating gateway presents for that
	// service. It is referenced without sds_config too, and the proxy has
	// it signed for the service as it does its own leaf.
	LinkedLeafPrefix = LeafSecret + "/"
	// IngressLeafSecret names an ingress gateway's certificate for clients
	// outside the mesh: a leaf of the mesh's CA with the gateway's SPIFFE
	// ID and the DNS names its listeners' metadata lists
	// (IngressDNSNamesField). Referenced without sds_config, as the only
	// certificate of a DownstreamTlsContext for outside clients; the proxy
	// has it signed as it does its own leaf.
	IngressLeafSecret = "weft-ingress-leaf"
	// RootsSecret names the trust bundle served over ADS.
	RootsSecret = "weft-roots"

	tlsTransportSocket = "envoy.transport_sockets.tls"
)

var (
	downstreamTLSType = typeURL(&tlsv3.DownstreamTlsContext{})
	upstreamTLSType   = typeURL(&tlsv3.UpstreamTlsContext{})
)

// compileDownstreamTLS compiles a filter chain's transport socket: mutual
// TLS presenting a mesh leaf, or, with certificates over SDS, TLS for
// clients outside the mesh (see compileOutsideTLS).
func compileDownstreamTLS(ts *corev3.TransportSocket) (*mtls.Server, error) {
	var ctx tlsv3.DownstreamTlsContext
	if err := unpackTransportSocket(ts, downstreamTLSType, &ctx); err != nil {
		return nil, err
	}
	if presentsOutsideCertificates(ctx.GetCommonTlsContext()) {
		s, err := compileOutsideTLS(&ctx)
		if err != nil {
			return nil, fmt.Errorf("DownstreamTlsContext: %w", err)
		}
		return s, nil
	}
	if err := onlyFields(&ctx, "common_tls_context", "require_client_certificate"); err != nil {
		return nil, fmt.Errorf("DownstreamTlsContext: %w", err)
	}
	c, err := compileCommonTLS(ctx.GetCommonTlsContext(), false)
	if err != nil {
		return nil, fmt.Errorf("DownstreamTlsContext: %w", err)
	}
	return &mtls.Server{
		MinVersion: c.minVersion, MaxVersion: c.maxVersion, CipherSuites: c.cipherSuites, ALPN: c.alpn,
		RequireClientCert: ctx.GetRequireClientCertificate().GetValue(),
		TrustBundle:       c.trustBundle, Inline: c.inline, PeerURISANs: c.sans, Leaf: c.leaf,
	}, nil
}

// compileUpstreamTLS compiles a cluster's transport socket: mutual TLS
// to a mesh peer, or, without a mesh leaf, TLS to a server outside the
// mesh (see compileExternal), which needs a name to verify the server by.
func compileUpstreamTLS(ts *corev3.TransportSocket) (*mtls.Client, error) {
	var ctx tlsv3.UpstreamTlsContext
	if err := unpackTransportSocket(ts, upstreamTLSType, &ctx); err != nil {
		return nil, err
	}
	// max_session_keys only sizes Envoy's session cache; it is harmless.
	if err := onlyFields(&ctx, "common_tls_context", "sni", "max_session_keys"); err != nil {
		return nil, fmt.Errorf("UpstreamTlsContext: %w", err)
	}
	c, err := compileCommonTLS(ctx.GetCommonTlsContext(), true)
	if err != nil {
		return nil, fmt.Errorf("UpstreamTlsContext: %w", err)
	}
	if c.external && ctx.GetSni() == "" && len(c.dnsSANs) == 0 {
		return nil, errors.New("UpstreamTlsContext: without a mesh leaf the server is verified by its DNS name: set sni or match_typed_subject_alt_names of san_type DNS")
	}
	return &mtls.Client{
		SNI: ctx.GetSni(), MinVersion: c.minVersion, MaxVersion: c.maxVersion, CipherSuites: c.cipherSuites, ALPN: c.alpn,
		TrustBundle: c.trustBundle, Inline: c.inline, PeerURISANs: c.sans, Leaf: c.leaf,
		External: c.external, PeerDNSSANs: c.dnsSANs, ExternalCert: c.externalCert,
	}, nil
}

// unpackTransportSocket decodes a TLS transport socket of the expected
// type; any other transport socket is rejected.
func unpackTransportSocket(ts *corev3.TransportSocket, wantType string, m proto.Message) error {
	typed := ts.GetTypedConfig()
	if got := extensionType(ts.GetName(), typed); got != wantType {
		return fmt.Errorf("transport socket %q (%s) is not supported; want %s with %s", ts.GetName(), got, tlsTransportSocket, wantType)
	}
	if err := typed.UnmarshalTo(m); err != nil {
		return fmt.Errorf("transport socket %q: undecodable typed_config: %w", ts.GetName(), err)
	}
	if err := m.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
		return fmt.Errorf("transport socket %q: invalid: %w", ts.GetName(), err)
	}
	return nil
}

// commonTLS is a compiled CommonTlsContext.
type commonTLS struct {
	minVersion, maxVersion uint16
	cipherSuites           []uint16
	alpn                   []string
	trustBundle            string
	inline                 *mtls.InlineTrust
	sans                   []match.String
	// leaf is the linked service whose leaf is presented; "" for the
	// proxy's own.
	leaf string
	// external is set when no mesh leaf is presented: TLS to a server
	// outside the mesh, verified by dnsSANs or the SNI, presenting
	// externalCert if any.
	external     bool
	dnsSANs      []match.String
	externalCert *tls.Certificate
}

// compileCommonTLS compiles a CommonTlsContext; only an upstream one may
// present no mesh leaf (see compileExternal).
func compileCommonTLS(c *tlsv3.CommonTlsContext, upstream bool) (*commonTLS, error) {
	if c == nil {
		return nil, errors.New("missing common_tls_context")
	}
	external := upstream && len(c.GetTlsCertificateSdsSecretConfigs()) == 0
	allowed := []string{"tls_params", "tls_certificate_sds_secret_configs", "validation_context_sds_secret_config",
		"combined_validation_context", "validation_context", "alpn_protocols"}
	if external {
		allowed = append(allowed, "tls_certificates")
	}
	if err := onlyFields(c, allowed...); err != nil {
		return nil, fmt.Errorf("common_tls_context: %w", err)
	}
	out := &commonTLS{alpn: c.GetAlpnProtocols()}
	p, err := compileTLSParams(c.GetTlsParams())
	if err != nil {
		return nil, fmt.Errorf("common_tls_context: tls_params: %w", err)
	}
	out.minVersion, out.maxVersion, out.cipherSuites = p.minVersion, p.maxVersion, p.cipherSuites
	if external {
		if err := compileExternal(c, out); err != nil {
			return nil, fmt.Errorf("common_tls_context: %w", err)
		}
		return out, nil
	}
	if out.leaf, err = compileLeafSecret(c.GetTlsCertificateSdsSecretConfigs()); err != nil {
		return nil, fmt.Errorf("common_tls_context: tls_certificate_sds_secret_configs: %w", err)
	}
	if err := compileValidation(c, out); err != nil {
		return nil, fmt.Errorf("common_tls_context: %w", err)
	}
	return out, nil
}

// compileLeafSecret requires the local certificate of mesh TLS to be
// weft-leaf or weft-leaf/<service>, which the identity managers provide:
// mesh private keys never travel over xDS. It returns the linked
// service, "" for weft-leaf.
func compileLeafSecret(configs []*tlsv3.SdsSecretConfig) (string, error) {
	if len(configs) != 1 {
		return "", fmt.Errorf("want exactly one, the secret %q or %q, have %d", LeafSecret, LinkedLeafPrefix+"<service>", len(configs))
	}
	sc := configs[0]
	if sc.GetSdsConfig() != nil {
		return "", fmt.Errorf("secret %q: certificates with private keys over SDS are presented only by listeners to clients outside the mesh; for mesh TLS reference %q without sds_config", sc.GetName(), LeafSecret)
	}
	name := sc.GetName()
	if name == LeafSecret {
		return "", nil
	}
	service, ok := strings.CutPrefix(name, LinkedLeafPrefix)
	if !ok {
		return "", fmt.Errorf("secret %q has no sds_config and is not %q nor %q, the only locally provided secrets", name, LeafSecret, LinkedLeafPrefix+"<service>")
	}
	if err := checkServiceName(service); err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	return service, nil
}

// checkServiceName accepts the service of a linked leaf: not empty, no
// slash, printable ASCII without spaces.
func checkServiceName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("no service after %q", LinkedLeafPrefix)
	case strings.Contains(s, "/"):
		return fmt.Errorf("service %q contains a slash", s)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("service %q is not a service name: it has a space, a control or a non-ASCII character", s)
	}
	return nil
}

// compileValidation compiles the trust bundle reference and SAN matchers
// of a validation_context_sds_secret_config or combined_validation_context.
func compileValidation(c *tlsv3.CommonTlsContext, out *commonTLS) error {
	if v := c.GetValidationContext(); v != nil {
		var err error
		if out.sans, out.inline, err = compileInlineValidation(v); err != nil {
			return fmt.Errorf("validation_context: %w", err)
		}
		return nil
	}
	sds := c.GetValidationContextSdsSecretConfig()
	if combined := c.GetCombinedValidationContext(); combined != nil {
		if err := onlyFields(combined, "default_validation_context", "validation_context_sds_secret_config"); err != nil {
			return fmt.Errorf("combined_validation_context: %w", err)
		}
		sans, err := compileDefaultValidation(combined.GetDefaultValidationContext())
		if err != nil {
			return fmt.Errorf("combined_validation_context: default_validation_context: %w", err)
		}
		out.sans, sds = sans, combined.GetValidationContextSdsSecretConfig()
	}
	if sds == nil {
		return errors.New("a validation context with a trust bundle over SDS is required")
	}
	if err := onlyFields(sds, "name", "sds_config"); err != nil {
		return fmt.Errorf("validation secret %q: %w", sds.GetName(), err)
	}
	if sds.GetSdsConfig() == nil {
		return fmt.Errorf("validation secret %q has no sds_config; trust bundles must come over ADS", sds.GetName())
	}
	if !fromADS(sds.GetSdsConfig()) {
		return fmt.Errorf("validation secret %q: sds_config must be ads", sds.GetName())
	}
	out.trustBundle = sds.GetName()
	return nil
}

// compileDefaultValidation compiles the SAN matchers; only URI SANs (SPIFFE
// IDs) are matched.
func compileDefaultValidation(v *tlsv3.CertificateValidationContext) ([]match.String, error) {
	if v == nil {
		return nil, nil
	}
	if err := onlyFields(v, "match_typed_subject_alt_names"); err != nil {
		return nil, err
	}
	return compileSANMatchers(v.GetMatchTypedSubjectAltNames(), tlsv3.SubjectAltNameMatcher_URI,
		"mesh peers are identified by their SPIFFE ID (URI); DNS names are matched only without a mesh leaf, for a server outside the mesh")
}

// compileSANMatchers compiles match_typed_subject_alt_names, all of
// san_type want; why says why other types are refused.
func compileSANMatchers(sans []*tlsv3.SubjectAltNameMatcher, want tlsv3.SubjectAltNameMatcher_SanType, why string) ([]match.String, error) {
	var out []match.String
	for i, san := range sans {
		if err := onlyFields(san, "san_type", "matcher"); err != nil {
			return nil, fmt.Errorf("match_typed_subject_alt_names[%d]: %w", i, err)
		}
		if san.GetSanType() != want {
			return nil, fmt.Errorf("match_typed_subject_alt_names[%d]: san_type %s is not supported here; %s", i, san.GetSanType(), why)
		}
		m, err := compileStringMatcher(san.GetMatcher())
		if err != nil {
			return nil, fmt.Errorf("match_typed_subject_alt_names[%d]: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// tlsParams are compiled TlsParameters.
type tlsParams struct {
	minVersion, maxVersion uint16
	cipherSuites           []uint16
}

// compileTLSParams compiles the protocol versions and cipher_suites (of
// TLS 1.0-1.2: TLS 1.3's are Go's), of mesh TLS (Consul's mesh entry sets
// them) and TLS for clients outside the mesh alike.
func compileTLSParams(p *tlsv3.TlsParameters) (tlsParams, error) {
	if p == nil {
		return tlsParams{minVersion: mtls.DefaultMinVersion}, nil
	}
	if err := onlyFields(p, "tls_minimum_protocol_version", "tls_maximum_protocol_version", "cipher_suites"); err != nil {
		return tlsParams{}, err
	}
	out := tlsParams{minVersion: tlsVersion(p.GetTlsMinimumProtocolVersion()), maxVersion: tlsVersion(p.GetTlsMaximumProtocolVersion())}
	if out.minVersion == 0 {
		out.minVersion = mtls.DefaultMinVersion
	}
	if out.maxVersion != 0 && out.maxVersion < out.minVersion {
		return tlsParams{}, fmt.Errorf("maximum version %s is below the minimum %s", p.GetTlsMaximumProtocolVersion(), p.GetTlsMinimumProtocolVersion())
	}
	var err error
	out.cipherSuites, err = compileCipherSuites(p.GetCipherSuites())
	return out, err
}

// tlsVersion maps a protocol version; 0 for TLS_AUTO.
func tlsVersion(v tlsv3.TlsParameters_TlsProtocol) uint16 {
	switch v {
	case tlsv3.TlsParameters_TLSv1_0:
		return tls.VersionTLS10
	case tlsv3.TlsParameters_TLSv1_1:
		return tls.VersionTLS11
	case tlsv3.TlsParameters_TLSv1_2:
		return tls.VersionTLS12
	case tlsv3.TlsParameters_TLSv1_3:
		return tls.VersionTLS13
	}
	return 0
}

// compiledSecret is a compiled SDS secret: a trust bundle or a
// certificate with its key.
type compiledSecret struct {
	bundle *mtls.Bundle
	cert   *tls.Certificate
}

// compileSecret compiles an SDS secret: a trust bundle
// (validation_context), or a certificate with its private key
// (tls_certificate), which only listeners for clients outside the mesh
// present. Mesh leaves never come over xDS.
func compileSecret(s *tlsv3.Secret) (compiledSecret, error) {
	switch {
	case s.GetTlsCertificate() != nil:
		cert, err := compileCertificateSecret(s)
		return compiledSecret{cert: cert}, err
	case s.GetValidationContext() != nil:
		b, err := compileTrustBundle(s.GetValidationContext())
		return compiledSecret{bundle: b}, err
	}
	return compiledSecret{}, fmt.Errorf("%s is not supported: want validation_context (a trust bundle) or tls_certificate (a certificate for clients outside the mesh)", oneofName(s, "type"))
}

// compileTrustBundle compiles a validation_context secret: inline PEM roots.
func compileTrustBundle(vc *tlsv3.CertificateValidationContext) (*mtls.Bundle, error) {
	if err := onlyFields(vc, "trusted_ca"); err != nil {
		return nil, fmt.Errorf("validation_context: %w", err)
	}
	var pemBytes []byte
	switch src := vc.GetTrustedCa().GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		pemBytes = src.InlineBytes
	case *corev3.DataSource_InlineString:
		pemBytes = []byte(src.InlineString)
	default:
		return nil, fmt.Errorf("validation_context: trusted_ca must be inline_bytes or inline_string")
	}
	b, err := mtls.ParseBundle(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("validation_context: trusted_ca: %w", err)
	}
	return b, nil
}
