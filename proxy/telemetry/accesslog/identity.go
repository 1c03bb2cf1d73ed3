package accesslog

import "crypto/x509"

// Identity is a SPIFFE ID: given as a string, or as the verified
// certificate that carries it, whose URI SAN the writer goroutine renders
// (so the request path does not format it). It is written as the ID, or
// "" when unknown.
type Identity struct {
	ID   string
	Cert *x509.Certificate
}

// String returns the ID, else the certificate's first URI SAN, else "".
func (i Identity) String() string {
	if i.ID == "" && i.Cert != nil && len(i.Cert.URIs) > 0 {
		return i.Cert.URIs[0].String()
	}
	return i.ID
}

// MarshalText writes String.
func (i Identity) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// UnmarshalText reads an ID.
func (i *Identity) UnmarshalText(b []byte) error {
	*i = Identity{ID: string(b)}
	return nil
}
