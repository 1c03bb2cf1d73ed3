package mtls

import (
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
}

// Client is a compiled UpstreamTlsContext.
type Client struct {
	// SNI is the server name sent; it is not used for verification.
	SNI string
	// MinVersion and MaxVersion bound the TLS version.
	MinVersion, MaxVersion uint16
	// ALPN are the protocols offered, in preference order.
	ALPN []string
	// TrustBundle names the SDS secret holding the roots the server's
	// certificate must chain to, unless Inline is set.
	TrustBundle string
	// Inline, when set, holds the roots in the configuration instead.
	Inline *InlineTrust
	// PeerURISANs match the server's SPIFFE ID, which must match one of
	// them (any SPIFFE ID when empty). DNS names are never checked.
	PeerURISANs []match.String
}

// Equal reports whether c and o configure the same handshakes (for
// keeping connection pools across configuration updates).
func (c *Client) Equal(o *Client) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.SNI == o.SNI && c.MinVersion == o.MinVersion && c.MaxVersion == o.MaxVersion &&
		slices.Equal(c.ALPN, o.ALPN) && c.TrustBundle == o.TrustBundle && c.Inline.Equal(o.Inline) &&
		slices.EqualFunc(c.PeerURISANs, o.PeerURISANs, match.String.Equal)
}

// Equal reports whether s and o configure the same handshakes.
func (s *Server) Equal(o *Server) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.MinVersion == o.MinVersion && s.MaxVersion == o.MaxVersion && slices.Equal(s.ALPN, o.ALPN) &&
		s.RequireClientCert == o.RequireClientCert && s.TrustBundle == o.TrustBundle && s.Inline.Equal(o.Inline) &&
		slices.EqualFunc(s.PeerURISANs, o.PeerURISANs, match.String.Equal)
}

// DefaultMinVersion is the lowest TLS version used when none is set, as in
// Envoy.
const DefaultMinVersion = tls.VersionTLS12
