package config

import (
	"errors"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
)

const spiffeValidatorName = "envoy.tls.cert_validator.spiffe"

var spiffeValidatorType = typeURL(&tlsv3.SPIFFECertValidatorConfig{})

// compileInlineValidation compiles a validation_context carried in the
// configuration, as the control plane sends for peered clusters: either
// trusted_ca (inline PEM), which a cluster of a peer's service uses to
// trust that peer's roots alone, or Envoy's SPIFFE certificate validator,
// whose trust domains each bring their own roots, for a public listener
// that peers call. SAN matchers apply as with an SDS bundle.
func compileInlineValidation(v *tlsv3.CertificateValidationContext) ([]match.String, *mtls.InlineTrust, error) {
	sansOnly := &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: v.GetMatchTypedSubjectAltNames()}
	sans, err := compileDefaultValidation(sansOnly)
	if err != nil {
		return nil, nil, err
	}
	if err := onlyFields(v, "trusted_ca", "custom_validator_config", "match_typed_subject_alt_names"); err != nil {
		return nil, nil, err
	}
	switch ca, custom := v.GetTrustedCa(), v.GetCustomValidatorConfig(); {
	case ca != nil && custom != nil:
		return nil, nil, errors.New("trusted_ca and custom_validator_config are exclusive")
	case ca != nil:
		pem, err := inlineBytes(ca)
		if err != nil {
			return nil, nil, fmt.Errorf("trusted_ca: %w", err)
		}
		t, err := mtls.NewInlineCA(pem)
		if err != nil {
			return nil, nil, fmt.Errorf("trusted_ca: %w", err)
		}
		return sans, t, nil
	case custom != nil:
		t, err := compileSPIFFEValidator(custom)
		if err != nil {
			return nil, nil, fmt.Errorf("custom_validator_config: %w", err)
		}
		return sans, t, nil
	}
	return nil, nil, errors.New("needs trusted_ca or custom_validator_config (the SPIFFE validator); a validation context without roots trusts nobody")
}

func compileSPIFFEValidator(tc *corev3.TypedExtensionConfig) (*mtls.InlineTrust, error) {
	if got := extensionType(tc.GetName(), tc.GetTypedConfig()); got != spiffeValidatorType {
		return nil, fmt.Errorf("validator %q (%s) is not supported; only %s is", tc.GetName(), got, spiffeValidatorName)
	}
	var cfg tlsv3.SPIFFECertValidatorConfig
	if err := unpack(tc.GetName(), tc.GetTypedConfig(), &cfg); err != nil {
		return nil, err
	}
	if err := onlyFields(&cfg, "trust_domains"); err != nil {
		return nil, err
	}
	byDomain := map[string][]byte{}
	for i, td := range cfg.GetTrustDomains() {
		if _, dup := byDomain[td.GetName()]; dup {
			return nil, fmt.Errorf("trust_domains[%d]: %q is listed twice", i, td.GetName())
		}
		pem, err := inlineBytes(td.GetTrustBundle())
		if err != nil {
			return nil, fmt.Errorf("trust_domains[%d] (%q): trust_bundle: %w", i, td.GetName(), err)
		}
		byDomain[td.GetName()] = pem
	}
	if len(byDomain) == 0 {
		return nil, errors.New("no trust_domains")
	}
	return mtls.NewSPIFFETrust(byDomain)
}

// inlineBytes reads a DataSource given inline: the sidecar reads no files
// named by its configuration.
func inlineBytes(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case nil:
		return nil, errors.New("empty")
	}
	return nil, errors.New("only inline_bytes and inline_string are supported")
}
