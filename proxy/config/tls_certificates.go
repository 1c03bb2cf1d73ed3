package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/proxy/mtls"
)

// presentsOutsideCertificates reports whether a CommonTlsContext names a
// certificate for clients outside the mesh: fetched over SDS (an
// sds_config), or an ingress gateway's IngressLeafSecret. Mesh leaves
// are named without sds_config.
func presentsOutsideCertificates(c *tlsv3.CommonTlsContext) bool {
	return slices.ContainsFunc(c.GetTlsCertificateSdsSecretConfigs(), func(sc *tlsv3.SdsSecretConfig) bool {
		return sc.GetSdsConfig() != nil || sc.GetName() == IngressLeafSecret
	})
}

// compileOutsideTLS compiles a DownstreamTlsContext that presents
// certificates for clients outside the mesh: TLS terminated as an API
// gateway's listener does (Consul's inline-certificate entries) or an
// ingress gateway's. Clients present no certificate, so there is no
// validation context and require_client_certificate is off;
// tls_certificate_sds_secret_configs name one or more tls_certificate
// secrets over ADS, picked by the client's server name, or only
// IngressLeafSecret, without sds_config: the ingress gateway's leaf,
// which the proxy holds; tls_params may set versions and cipher suites.
func compileOutsideTLS(ctx *tlsv3.DownstreamTlsContext) (*mtls.Server, error) {
	c := ctx.GetCommonTlsContext()
	out := &mtls.Server{ALPN: c.GetAlpnProtocols()}
	refs := c.GetTlsCertificateSdsSecretConfigs()
	for i, sc := range refs {
		if sc.GetName() == IngressLeafSecret {
			if err := compileIngressLeafRef(sc, len(refs)); err != nil {
				return nil, fmt.Errorf("common_tls_context: tls_certificate_sds_secret_configs[%d]: %w", i, err)
			}
			out.Certificates = append(out.Certificates, IngressLeafSecret)
			continue
		}
		name, err := compileCertificateRef(sc)
		if err != nil {
			return nil, fmt.Errorf("common_tls_context: tls_certificate_sds_secret_configs[%d]: %w", i, err)
		}
		if slices.Contains(out.Certificates, name) {
			return nil, fmt.Errorf("common_tls_context: tls_certificate_sds_secret_configs[%d]: secret %q is listed twice", i, name)
		}
		out.Certificates = append(out.Certificates, name)
	}
	const outside = "a listener presenting certificates over SDS serves clients outside the mesh and verifies no client certificate"
	if err := onlyFields(ctx, "common_tls_context", "require_client_certificate"); err != nil {
		return nil, err
	}
	if ctx.GetRequireClientCertificate().GetValue() {
		return nil, errors.New("require_client_certificate: " + outside)
	}
	if c.GetValidationContextType() != nil {
		return nil, fmt.Errorf("common_tls_context: %s: %s", oneofName(c, "validation_context_type"), outside)
	}
	if err := onlyFields(c, "tls_params", "tls_certificate_sds_secret_configs", "alpn_protocols"); err != nil {
		return nil, fmt.Errorf("common_tls_context: %w", err)
	}
	p, err := compileTLSParams(c.GetTlsParams())
	if err != nil {
		return nil, fmt.Errorf("common_tls_context: tls_params: %w", err)
	}
	out.MinVersion, out.MaxVersion, out.CipherSuites = p.minVersion, p.maxVersion, p.cipherSuites
	return out, nil
}

// compileCertificateRef checks a reference to a certificate over SDS:
// named, over ADS, and not a name of the mesh's own secrets.
func compileCertificateRef(sc *tlsv3.SdsSecretConfig) (string, error) {
	name := sc.GetName()
	if err := onlyFields(sc, "name", "sds_config"); err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	switch {
	case name == "":
		return "", errors.New("a secret without a name")
	case isMeshLeaf(name):
		return "", fmt.Errorf("secret %q is a mesh leaf: provided locally for mesh mTLS, never with or as a certificate over SDS", name)
	case name == RootsSecret:
		return "", fmt.Errorf("secret %q is the mesh's trust bundle, not a certificate", name)
	case sc.GetSdsConfig() == nil:
		return "", fmt.Errorf("secret %q has no sds_config: a listener presenting certificates over SDS takes every certificate over SDS (ads)", name)
	case !fromADS(sc.GetSdsConfig()):
		return "", fmt.Errorf("secret %q: sds_config must be ads", name)
	}
	return name, nil
}

// compileIngressLeafRef checks a reference to IngressLeafSecret, one of
// n: alone and without sds_config, the proxy's own.
func compileIngressLeafRef(sc *tlsv3.SdsSecretConfig, n int) error {
	switch {
	case sc.GetSdsConfig() != nil:
		return fmt.Errorf("secret %q is the ingress gateway's leaf, which the proxy has signed itself: reference it without sds_config", IngressLeafSecret)
	case n != 1:
		return fmt.Errorf("secret %q is presented alone, not with other certificates (have %d)", IngressLeafSecret, n)
	}
	return onlyFields(sc, "name")
}

// isMeshLeaf reports whether name is weft-leaf, weft-leaf/<...> or
// weft-ingress-leaf: a leaf of the mesh's CA, whose key the proxy holds.
func isMeshLeaf(name string) bool {
	return name == LeafSecret || strings.HasPrefix(name, LinkedLeafPrefix) || name == IngressLeafSecret
}

// compileCertificateSecret compiles a tls_certificate secret: a
// certificate chain and its private key, each inline_string or
// inline_bytes in PEM, the key matching the chain's leaf.
func compileCertificateSecret(s *tlsv3.Secret) (*tls.Certificate, error) {
	if name := s.GetName(); isMeshLeaf(name) || name == RootsSecret {
		return nil, fmt.Errorf("tls_certificate: %q names a mesh leaf or the trust bundle, which never come as certificates over SDS", name)
	}
	tc := s.GetTlsCertificate()
	if err := onlyFields(tc, "certificate_chain", "private_key"); err != nil {
		return nil, fmt.Errorf("tls_certificate: %w", err)
	}
	chain, err := inlineBytes(tc.GetCertificateChain())
	if err != nil {
		return nil, fmt.Errorf("tls_certificate: certificate_chain: %w", err)
	}
	key, err := inlineBytes(tc.GetPrivateKey())
	if err != nil {
		return nil, fmt.Errorf("tls_certificate: private_key: %w", err)
	}
	cert, err := mtls.ParseCertificate(chain, key)
	if err != nil {
		return nil, fmt.Errorf("tls_certificate: %w", err)
	}
	return cert, nil
}

// cipherSuites map the TLS 1.0-1.2 cipher suite names of Envoy's
// tls_params (BoringSSL's) to Go's. TLS 1.3's suites are not configurable,
// in Envoy as in Go.
var cipherSuites = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// compileCipherSuites maps cipher_suites, in which "[A|B]" is a group of
// equally preferred suites. Go picks by its own order of preference, so
// the order given does not matter.
func compileCipherSuites(names []string) ([]uint16, error) {
	var out []uint16
	for i, entry := range names {
		group := strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]")
		for name := range strings.SplitSeq(group, "|") {
			id, ok := cipherSuites[name]
			if !ok {
				return nil, fmt.Errorf("cipher_suites[%d]: %s", i, unknownCipherSuite(name))
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// unknownCipherSuite says why name is refused, with Envoy's name for it
// when name is the IANA one (as Consul's settings spell suites).
func unknownCipherSuite(name string) string {
	for envoy, id := range cipherSuites {
		if tls.CipherSuiteName(id) == name {
			return fmt.Sprintf("%q is the IANA name; Envoy's is %q", name, envoy)
		}
	}
	known := make([]string, 0, len(cipherSuites))
	for envoy := range cipherSuites {
		known = append(known, envoy)
	}
	slices.Sort(known)
	return fmt.Sprintf("unknown cipher suite %q; want one of %s", name, strings.Join(known, ", "))
}
