package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// InlineTrust is roots carried in the configuration itself rather than in
// an SDS secret: a validation context's trusted_ca, which any peer must
// chain to (a cluster of a peered service, which trusts that peer's roots
// only), or Envoy's SPIFFE certificate validator, which pairs each trust
// domain with its own roots (the public listener of a service that peers
// call: a peer's roots can never vouch for an identity of another trust
// domain, the local one included). It is immutable.
type InlineTrust struct {
	// any, when set, is the bundle of every trust domain (trusted_ca).
	any *Bundle
	// domains are the bundles by trust domain (the SPIFFE validator).
	domains map[string]*Bundle
	key     string
}

// NewInlineCA returns trust in the PEM roots for every trust domain.
func NewInlineCA(pemBytes []byte) (*InlineTrust, error) {
	b, err := ParseBundle(pemBytes)
	if err != nil {
		return nil, err
	}
	return &InlineTrust{any: b, key: "*=" + fingerprints(b)}, nil
}

// NewSPIFFETrust returns trust in each trust domain's PEM roots for that
// trust domain only.
func NewSPIFFETrust(pemByDomain map[string][]byte) (*InlineTrust, error) {
	t := &InlineTrust{domains: map[string]*Bundle{}}
	var key []string
	for _, td := range slices.Sorted(maps.Keys(pemByDomain)) {
		b, err := ParseBundle(pemByDomain[td])
		if err != nil {
			return nil, fmt.Errorf("trust domain %q: %w", td, err)
		}
		t.domains[td] = b
		key = append(key, td+"="+fingerprints(b))
	}
	t.key = strings.Join(key, ";")
	return t, nil
}

// bundleFor returns the bundle a peer's leaf must chain to: the one of the
// trust domain its SPIFFE ID claims, which the chain's verification then
// proves.
func (t *InlineTrust) bundleFor(leaf *x509.Certificate) (*Bundle, error) {
	if t.any != nil {
		return t.any, nil
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	b, ok := t.domains[id.TrustDomain().Name()]
	if !ok {
		return nil, fmt.Errorf("peer trust domain %q is not trusted", id.TrustDomain().Name())
	}
	return b, nil
}

// Equal reports whether t and o trust the same roots for the same trust
// domains.
func (t *InlineTrust) Equal(o *InlineTrust) bool {
	if t == nil || o == nil {
		return t == o
	}
	return t.key == o.key
}

func fingerprints(b *Bundle) string {
	var out []string
	for _, r := range b.Roots {
		sum := sha256.Sum256(r.Raw)
		out = append(out, hex.EncodeToString(sum[:8]))
	}
	return strings.Join(out, ",")
}
