package controlplane

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// TestConfigDumpRedactsPrivateKeys: an API gateway's certificate secret
// shows its chain in the control plane's config dump, never its key, and
// the snapshot's secret keeps it.
func TestConfigDumpRedactsPrivateKeys(t *testing.T) {
	inline := func(s string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
	}
	sec := &tlsv3.Secret{Name: "api-gateway-certificate/c", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline("THE-CHAIN"), PrivateKey: inline("THE-KEY"),
	}}}
	got := string(marshalResource(sec))
	if strings.Contains(got, "THE-KEY") || !strings.Contains(got, redacted) || !strings.Contains(got, "THE-CHAIN") {
		t.Errorf("dump %s: want the chain and %q, not the key", got, redacted)
	}
	if sec.GetTlsCertificate().GetPrivateKey().GetInlineString() != "THE-KEY" {
		t.Error("redacting the dump changed the served secret")
	}
	roots := &tlsv3.Secret{Name: "weft-roots", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline("ROOTS")}}}
	if got := string(marshalResource(roots)); !strings.Contains(got, "ROOTS") {
		t.Errorf("trust bundle dump %s lost its roots", got)
	}
}
