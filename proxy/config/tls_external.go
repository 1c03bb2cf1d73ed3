package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/proxy/mtls"
)

// compileExternal compiles an UpstreamTlsContext without a mesh leaf
// (no tls_certificate_sds_secret_configs): TLS to a server outside the
// mesh, as a terminating gateway originates to a linked service (Consul's
// CAFile, CertFile, KeyFile and SNI). The server is verified as any TLS
// client verifies it: validation_context.trusted_ca, inline or a file,
// holds the roots its chain must reach; match_typed_subject_alt_names of
// san_type DNS, if any, match its DNS names, else the SNI does. A client
// certificate, if any, is one tls_certificates entry of files. Files are
// read now, on the proxy's host.
func compileExternal(c *tlsv3.CommonTlsContext, out *commonTLS) error {
	out.external = true
	v := c.GetValidationContext()
	if v == nil {
		return fmt.Errorf("without a mesh leaf (TLS to a server outside the mesh), validation_context with trusted_ca, the server's roots, is required; have %s", oneofName(c, "validation_context_type"))
	}
	if err := onlyFields(v, "trusted_ca", "match_typed_subject_alt_names"); err != nil {
		return fmt.Errorf("validation_context: %w without a mesh leaf", err)
	}
	pem, err := trustedCABytes(v.GetTrustedCa())
	if err != nil {
		return fmt.Errorf("validation_context: trusted_ca: %w", err)
	}
	if out.inline, err = mtls.NewInlineCA(pem); err != nil {
		return fmt.Errorf("validation_context: trusted_ca: %w", err)
	}
	out.dnsSANs, err = compileSANMatchers(v.GetMatchTypedSubjectAltNames(), tlsv3.SubjectAltNameMatcher_DNS,
		"without a mesh leaf the server is outside the mesh and verified by its DNS names")
	if err != nil {
		return fmt.Errorf("validation_context: %w", err)
	}
	out.externalCert, err = compileExternalCert(c.GetTlsCertificates())
	return err
}

// compileExternalCert loads the client certificate presented to a server
// outside the mesh: at most one entry, whose certificate_chain and
// private_key are files on the proxy's host (Consul's CertFile and
// KeyFile). Inline ones are refused: a private key never travels over
// xDS.
func compileExternalCert(certs []*tlsv3.TlsCertificate) (*tls.Certificate, error) {
	switch len(certs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("tls_certificates: want at most one, have %d", len(certs))
	}
	tc := certs[0]
	if err := onlyFields(tc, "certificate_chain", "private_key"); err != nil {
		return nil, fmt.Errorf("tls_certificates[0]: %w", err)
	}
	chain, err := fileBytes(tc.GetCertificateChain())
	if err != nil {
		return nil, fmt.Errorf("tls_certificates[0]: certificate_chain: %w", err)
	}
	key, err := fileBytes(tc.GetPrivateKey())
	if err != nil {
		return nil, fmt.Errorf("tls_certificates[0]: private_key: %w", err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, fmt.Errorf("tls_certificates[0]: %s and %s: %w", tc.GetCertificateChain().GetFilename(), tc.GetPrivateKey().GetFilename(), err)
	}
	return &cert, nil
}

// trustedCABytes reads the roots of a server outside the mesh: inline,
// or from a file (Consul's CAFile).
func trustedCABytes(ds *corev3.DataSource) ([]byte, error) {
	if _, ok := ds.GetSpecifier().(*corev3.DataSource_Filename); ok {
		return fileBytes(ds)
	}
	return inlineBytes(ds)
}

// fileBytes reads a DataSource that must name a regular file on the
// proxy's host. It is read when the cluster is compiled: a changed file
// applies when the cluster next changes.
func fileBytes(ds *corev3.DataSource) ([]byte, error) {
	f, ok := ds.GetSpecifier().(*corev3.DataSource_Filename)
	switch {
	case ds == nil:
		return nil, errors.New("required")
	case !ok:
		return nil, fmt.Errorf("%s is not supported: name a file on the proxy's host (filename); a private key never travels over xDS", oneofName(ds, "specifier"))
	}
	fi, err := os.Stat(f.Filename)
	if err != nil {
		return nil, fmt.Errorf("filename %q: %w", f.Filename, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("filename %q: not a regular file", f.Filename)
	}
	b, err := os.ReadFile(f.Filename)
	if err != nil {
		return nil, fmt.Errorf("filename %q: %w", f.Filename, err)
	}
	return b, nil
}
