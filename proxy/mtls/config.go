package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/weft-mesh/weft/proxy/match"
)

// Leaf supplies the local certificate at handshake time. Both methods are
// called concurrently from handshakes, must not block and fail when there
// is no certificate yet.
type Leaf interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error)
}

// Credentials are what handshakes read when they happen: the leaves, the
// trust bundles and the certificates received over SDS.
type Credentials struct {
	// Leaf is the proxy's own leaf (weft-leaf).
	Leaf Leaf
	// Linked are the leaves of the linked services (weft-leaf/<service>);
	// nil holds none.
	Linked *Leaves
	Trust  *Trust
	// Certificates are those presented to clients outside the mesh
	// (Server.Certificates); nil holds none.
	Certificates *Certificates
}

// leafOf returns the leaf a configuration names: the proxy's own for "",
// else the named service's, looked up at each handshake; a handshake
// fails, naming the service, while it has none.
func (c Credentials) leafOf(name string) Leaf {
	if name == "" {
		return c.Leaf
	}
	return linkedLeaf{leaves: c.Linked, service: name}
}

// ServerConfig returns the listener-side configuration for p. Handshakes
// fail unless the client presents a certificate chaining to the current
// bundle (when p requires one) whose single URI SAN is a SPIFFE ID
// matching p.PeerURISANs. It presents the leaf p.Leaf names. For a p
// with Certificates, see outsideServerConfig.
func (c Credentials) ServerConfig(p *Server) *tls.Config {
	if len(p.Certificates) > 0 {
		return c.outsideServerConfig(p)
	}
	clientAuth := tls.RequestClientCert
	if p.RequireClientCert {
		clientAuth = tls.RequireAnyClientCert
	}
	return &tls.Config{
		GetCertificate:              c.leafOf(p.Leaf).GetCertificate,
		ClientAuth:                  clientAuth,
		MinVersion:                  p.MinVersion,
		MaxVersion:                  p.MaxVersion,
		CipherSuites:                p.CipherSuites,
		NextProtos:                  p.ALPN,
		DynamicRecordSizingDisabled: meshFullRecords,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 && !p.RequireClientCert {
				return nil
			}
			_, err := verifyPeer(cs, c.trustOf(p.TrustBundle, p.Inline), p.PeerURISANs, x509.ExtKeyUsageClientAuth)
			return err
		},
	}
}

// meshFullRecords turns off crypto/tls's dynamic record sizing between
// sidecars: it sends the first 128 KiB of a connection in records that
// start at about one TCP segment and grow by one per record, each its own
// write system call (the first 64 KiB took 11 writes, against 4 of full
// 16 KiB records). It is meant for a browser's first bytes over a slow
// link, not for a mesh's links; clients outside the mesh keep it.
const meshFullRecords = true

// ClientConfig returns the cluster-side configuration for p. Handshakes
// fail unless the server's certificate chains to the current bundle and
// its single URI SAN is a SPIFFE ID matching p.PeerURISANs; its DNS names
// are ignored. It presents the leaf p.Leaf names. For an External p, see
// externalClientConfig.
func (c Credentials) ClientConfig(p *Client) *tls.Config {
	if p.External {
		return c.externalClientConfig(p)
	}
	return &tls.Config{
		ServerName:                  p.SNI,
		GetClientCertificate:        c.leafOf(p.Leaf).GetClientCertificate,
		MinVersion:                  p.MinVersion,
		MaxVersion:                  p.MaxVersion,
		CipherSuites:                p.CipherSuites,
		NextProtos:                  p.ALPN,
		DynamicRecordSizingDisabled: meshFullRecords,
		// The standard verification checks DNS names against ServerName;
		// the mesh checks SPIFFE IDs instead, in VerifyConnection.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verifyPeer(cs, c.trustOf(p.TrustBundle, p.Inline), p.PeerURISANs, x509.ExtKeyUsageServerAuth)
			return err
		},
	}
}

// externalClientConfig is the configuration of TLS to a server outside
// the mesh: the client certificate is p.ExternalCert, or none; the
// server's chain is verified against p's roots and its DNS names against
// p.PeerDNSSANs, or p.SNI when there are none, as any TLS client verifies
// a server. It is checked in VerifyConnection, which resumed sessions run
// too.
func (c Credentials) externalClientConfig(p *Client) *tls.Config {
	cert := p.ExternalCert
	if cert == nil {
		cert = &tls.Certificate{} // none: an empty Certificate message
	}
	return &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		ServerName:           p.SNI,
		MinVersion:           p.MinVersion,
		MaxVersion:           p.MaxVersion,
		CipherSuites:         p.CipherSuites,
		NextProtos:           p.ALPN,
		// The chain and the name are checked in VerifyConnection.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServerName(cs, c.trustOf(p.TrustBundle, p.Inline), p.SNI, p.PeerDNSSANs)
		},
	}
}

// trustOf returns the roots a handshake verifies its peer with: those
// inline in the configuration, else the named SDS bundle's.
func (c Credentials) trustOf(bundleName string, inline *InlineTrust) func(leaf *x509.Certificate) (*Bundle, error) {
	if inline != nil {
		return inline.bundleFor
	}
	return func(*x509.Certificate) (*Bundle, error) {
		if b := c.Trust.Bundle(bundleName); b != nil {
			return b, nil
		}
		return nil, fmt.Errorf("trust bundle %q has not been received", bundleName)
	}
}

// verifyPeer checks the peer's chain against the bundle trust gives for
// its leaf and its SPIFFE ID against sans, returning the ID.
func verifyPeer(cs tls.ConnectionState, trust func(*x509.Certificate) (*Bundle, error), sans []match.String, usage x509.ExtKeyUsage) (spiffeid.ID, error) {
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	b, err := trust(leaf)
	if err != nil {
		return spiffeid.ID{}, err
	}
	if leaf.IsCA {
		return spiffeid.ID{}, errors.New("peer certificate is a CA certificate")
	}
	if _, err := leaf.Verify(chainOptions(cs, b, usage)); err != nil {
		return spiffeid.ID{}, fmt.Errorf("peer certificate: %w", err)
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("peer certificate: %w", err)
	}
	if !matchesAny(sans, id.String()) {
		return spiffeid.ID{}, fmt.Errorf("peer SPIFFE ID %s is not allowed", id)
	}
	return id, nil
}

// chainOptions verifies the peer's chain: its intermediates up to b's
// roots, for usage.
func chainOptions(cs tls.ConnectionState, b *Bundle, usage x509.ExtKeyUsage) x509.VerifyOptions {
	opts := x509.VerifyOptions{Roots: b.pool, KeyUsages: []x509.ExtKeyUsage{usage}}
	if len(cs.PeerCertificates) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	return opts
}

// verifyServerName checks a server outside the mesh: its chain against
// the bundle trust gives, and one of its DNS SANs against dnsSANs, or,
// when there are none, its name against serverName as crypto/tls does
// (wildcard certificates included).
func verifyServerName(cs tls.ConnectionState, trust func(*x509.Certificate) (*Bundle, error), serverName string, dnsSANs []match.String) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server presented no certificate")
	}
	if serverName == "" && len(dnsSANs) == 0 {
		return errors.New("no server name to verify the server's certificate against")
	}
	leaf := cs.PeerCertificates[0]
	b, err := trust(leaf)
	if err != nil {
		return err
	}
	opts := chainOptions(cs, b, x509.ExtKeyUsageServerAuth)
	if len(dnsSANs) == 0 {
		opts.DNSName = serverName
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	if len(dnsSANs) > 0 && !slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return matchesAny(dnsSANs, n) }) {
		return fmt.Errorf("server certificate: DNS names %q match none of the subject alt names allowed", leaf.DNSNames)
	}
	return nil
}

func matchesAny(sans []match.String, id string) bool {
	if len(sans) == 0 {
		return true
	}
	for i := range sans {
		if sans[i].Match(id) {
			return true
		}
	}
	return false
}

// PeerID returns the SPIFFE ID of a connection's verified peer, or false
// when the peer presented no certificate.
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, bool) {
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, false
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	return id, err == nil
}
