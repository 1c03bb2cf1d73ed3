package mtls

import (
	"bytes"
	"crypto/tls"
	"slices"

	"github.com/weft-mesh/weft/proxy/match"
)

// Server is a compiled DownstreamTlsContext.
type Server struct {
	// MinVersion and MaxVersion bound the TLS version (tls.VersionTLS12…);
	// zero MaxVersion means the highest supported.
	MinVersion, MaxVersion uint16
	// ALPN are the protocols offered, in preference order.
	ALPN []string
	// RequireClientCert fails handshakes without a client certificate.
	// Without it, a client certificate is still verified when presented.
	RequireClientCert bool
	// TrustBundle names the SDS secret holding the roots client
	// certificates must chain to, unless Inline is set.
	TrustBundle string
	// Inline, when set, holds the roots in the configuration instead.
	Inline *InlineTrust
	// PeerURISANs match the client's SPIFFE ID; it must match one of them
	// (any SPIFFE ID when empty).
	PeerURISANs []match.String
	// Leaf names the certificate presented: "" for the proxy's own
	// (weft-leaf), else the linked service whose leaf it is
	// (weft-leaf/<service>), as a terminating gateway presents.
	Leaf string
	// Certificates, when not empty, makes this TLS for clients outside
	// the mesh (an API gateway's listener): the names of the SDS secrets
	// whose certificates are presented, picked by the client's server
	// name (see Certificates.picker), the first by default. No client
	// certificate is asked for; RequireClientCert, TrustBundle, Inline,
	// PeerURISANs and Leaf are unused.
	Certificates []string
	// CipherSuites, when not empty, are the TLS 1.0-1.2 cipher suites
	// accepted (TLS 1.3's are not configurable).
	CipherSuites []uint16
}

// Client is a compiled UpstreamTlsContext: mutual TLS to a mesh peer, or,
// when External is set, TLS to a server outside the mesh.
type Client struct {
	// SNI is the server name sent. A mesh client does not verify it; an
	// External one verifies the server's DNS names against it unless
	// PeerDNSSANs are given.
	SNI string
	// MinVersion and MaxVersion bound the TLS version.
	MinVersion, MaxVersion uint16
	// CipherSuites, when not empty, are the TLS 1.0-1.2 cipher suites
	// offered (TLS 1.3's are not configurable).
	CipherSuites []uint16
	// ALPN are the protocols offered, in preference order.
	ALPN []string
	// TrustBundle names the SDS secret holding the roots the server's
	// certificate must chain to, unless Inline is set.
	TrustBundle string
	// Inline, when set, holds the roots in the configuration instead.
	Inline *InlineTrust
	// PeerURISANs match the server's SPIFFE ID, which must match one of
	// them (any SPIFFE ID when empty). A mesh client never checks DNS
	// names.
	PeerURISANs []match.String
	// Leaf names the certificate presented, as Server.Leaf does.
	Leaf string
	// External is TLS to a server outside the mesh (an UpstreamTlsContext
	// without a mesh leaf: a terminating gateway originating TLS to a
	// linked service). It presents ExternalCert, if any, and verifies the
	// server as any TLS client verifies it: its chain against Inline, its
	// DNS names against PeerDNSSANs, or against SNI when there are none.
	// SPIFFE IDs are not checked; Leaf and PeerURISANs are unused.
	External bool
	// PeerDNSSANs match the DNS names of an External client's server: one
	// of its DNS SANs must match one of them.
	PeerDNSSANs []match.String
	// ExternalCert is the certificate an External client presents, read
	// from files on the proxy's host (Consul's CertFile and KeyFile); nil
	// presents none.
	ExternalCert *tls.Certificate
}

// Equal reports whether c and o configure the same handshakes (for
// keeping connection pools across configuration updates).
func (c *Client) Equal(o *Client) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.SNI == o.SNI && c.MinVersion == o.MinVersion && c.MaxVersion == o.MaxVersion &&
		slices.Equal(c.CipherSuites, o.CipherSuites) && slices.Equal(c.ALPN, o.ALPN) && c.TrustBundle == o.TrustBundle && c.Inline.Equal(o.Inline) &&
		slices.EqualFunc(c.PeerURISANs, o.PeerURISANs, match.String.Equal) &&
		c.Leaf == o.Leaf && c.External == o.External && slices.EqualFunc(c.PeerDNSSANs, o.PeerDNSSANs, match.String.Equal) &&
		sameCertificate(c.ExternalCert, o.ExternalCert)
}

// sameCertificate reports whether a and b are the same chain (a key pair
// is checked to match its certificate when loaded).
func sameCertificate(a, b *tls.Certificate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.EqualFunc(a.Certificate, b.Certificate, bytes.Equal)
}

// Equal reports whether s and o configure the same handshakes.
func (s *Server) Equal(o *Server) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.MinVersion == o.MinVersion && s.MaxVersion == o.MaxVersion && slices.Equal(s.ALPN, o.ALPN) &&
		s.RequireClientCert == o.RequireClientCert && s.TrustBundle == o.TrustBundle && s.Inline.Equal(o.Inline) &&
		slices.EqualFunc(s.PeerURISANs, o.PeerURISANs, match.String.Equal) && s.Leaf == o.Leaf &&
		slices.Equal(s.Certificates, o.Certificates) && slices.Equal(s.CipherSuites, o.CipherSuites)
}

// DefaultMinVersion is the lowest TLS version used when none is set, as in
// Envoy.
const DefaultMinVersion = tls.VersionTLS12
