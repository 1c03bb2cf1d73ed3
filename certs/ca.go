package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Leaf TTL bounds.
const (
	MinLeafTTL     = time.Minute
	DefaultLeafTTL = 24 * time.Hour
	// clockSkew backdates leaves so peers with slightly slow clocks accept them.
	clockSkew = time.Minute
)

// CA signs leaf certificates. It is immutable; rotation builds a new CA.
type CA struct {
	trustDomain spiffeid.TrustDomain
	cert        *x509.Certificate   // the signing certificate (root or intermediate)
	chain       []*x509.Certificate // intermediates from cert up to, excluding, the root
	root        *x509.Certificate   // the root cert chains to
	key         crypto.Signer
}

// NewRootCA generates a self-signed ECDSA P-256 root for a trust domain,
// valid for ttl from now.
func NewRootCA(td spiffeid.TrustDomain, now time.Time, ttl time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Weft Root CA " + serial.Text(16)[:8], Organization: []string{"Weft"}},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{trustDomain: td, cert: cert, root: cert, key: key}, nil
}

// TrustDomain is the trust domain the CA issues identities in.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.trustDomain }

// Root is the root certificate the CA's leaves chain to.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Chain is the signing certificate followed by its intermediates, excluding
// the root: what a leaf is presented with.
func (ca *CA) Chain() []*x509.Certificate {
	if ca.cert == ca.root {
		return nil
	}
	return append([]*x509.Certificate{ca.cert}, ca.chain...)
}

// Sign issues a leaf for id from a PEM-less DER CSR. The CSR's signature is
// checked; a URI SAN, if present, must be id; its DNS SANs are put in the
// leaf only if each is one of allowedDNS (compared without regard to
// case; an ingress gateway's names), else Sign fails with a
// *DNSNameError naming the first that is not. Its subject and other SANs
// are ignored. The leaf lives ttl, capped by the CA's own expiry.
// allowedDNS is variadic only so that callers without DNS names (most)
// need not name it.
func (ca *CA) Sign(csrDER []byte, id spiffeid.ID, ttl time.Duration, now time.Time, allowedDNS ...string) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	if err := checkLeafKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if !id.MemberOf(ca.trustDomain) {
		return nil, fmt.Errorf("identity %s is outside trust domain %s", id, ca.trustDomain)
	}
	for _, u := range csr.URIs {
		if u.String() != id.String() {
			return nil, fmt.Errorf("CSR asks for URI SAN %s, but the caller may only get %s", u, id)
		}
	}
	dnsNames, err := checkDNSNames(csr.DNSNames, allowedDNS)
	if err != nil {
		return nil, err
	}
	if ttl < MinLeafTTL {
		return nil, fmt.Errorf("leaf TTL %v is below the minimum %v", ttl, MinLeafTTL)
	}
	notAfter := now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: id.Path()},
		URIs:                  []*url.URL{id.URL()},
		DNSNames:              dnsNames,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign leaf for %s: %w", id, err)
	}
	return x509.ParseCertificate(der)
}

// DNSNameError is a DNS name a CSR asks for that its caller may not
// have.
type DNSNameError struct {
	Name    string
	Allowed []string // the names the caller may have
}

func (e *DNSNameError) Error() string {
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("CSR asks for DNS SAN %q, but the caller may have no DNS name", e.Name)
	}
	return fmt.Sprintf("CSR asks for DNS SAN %q, which is not one of the names the caller may have (%s)", e.Name, strings.Join(e.Allowed, ", "))
}

// checkDNSNames returns the DNS names asked for, lower-cased and each
// once, if each is allowed.
func checkDNSNames(asked, allowed []string) ([]string, error) {
	var out []string
	for _, n := range asked {
		n = strings.ToLower(n)
		if !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, n) }) {
			return nil, &DNSNameError{Name: n, Allowed: allowed}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// checkLeafKey accepts ECDSA P-256/P-384 and RSA ≥ 2048 bits.
func checkLeafKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("CSR key: ECDSA curve %s not accepted; use P-256 or P-384", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("CSR key: RSA %d bits not accepted; use at least 2048", k.N.BitLen())
		}
	default:
		return fmt.Errorf("CSR key: type %T not accepted; use ECDSA or RSA", pub)
	}
	return nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}

var errNoCert = errors.New("no certificate found")
